//! Instruments one file (development helper).
//!
//! `instrument_file IN OUT [ARG...]`: each `ARG` is a Binaryen pass argument
//! (`asyncify-asserts`, `asyncify-imports@env.sleep`, ...) or `exact-saves`.
fn main() {
    let mut args = std::env::args().skip(1);
    let (input, output) = (args.next().expect("input"), args.next().expect("output"));
    let mut options = asyncify_transform::Options::default();
    for arg in args {
        if arg == "exact-saves" {
            options.exact_saves = true;
        } else {
            options
                .apply_pass_arg(&arg)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let bytes = std::fs::read(&input).expect("read input");
    let out = asyncify_transform::instrument(&bytes, &options).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(output, out.wasm).expect("write output");
}
