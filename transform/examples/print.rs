fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    println!("{}", wasmprinter::print_bytes(&bytes).unwrap());
}
