fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        match asyncify_transform::instrument(&bytes, &Default::default()) {
            Ok(out) => println!(
                "{path}: ok {} -> {} bytes, {} instrumented, {:?}",
                bytes.len(),
                out.wasm.len(),
                out.instrumented.len(),
                t.elapsed()
            ),
            Err(e) => println!("{path}: error: {e}"),
        }
    }
}
