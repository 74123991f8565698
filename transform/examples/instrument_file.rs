//! Instruments one file with default options (development helper).
fn main() {
    let mut args = std::env::args().skip(1);
    let (input, output) = (args.next().expect("input"), args.next().expect("output"));
    let bytes = std::fs::read(&input).expect("read input");
    let out = asyncify_transform::instrument(&bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(output, out.wasm).expect("write output");
}
