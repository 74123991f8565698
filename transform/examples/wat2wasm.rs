//! Converts a `.wat` file to `.wasm` (used to refresh the committed corpus binaries).
fn main() {
    let mut args = std::env::args().skip(1);
    let (input, output) = (
        args.next().expect("input .wat"),
        args.next().expect("output .wasm"),
    );
    let wasm = wat::parse_file(&input).expect("valid wat");
    std::fs::write(output, wasm).expect("write output");
}
