//! Inputs built to break the transform (issue 13, items 6 to 8): deep
//! nesting, components, and modules at the limits engines enforce. Each must
//! give an output or a clean, typed error; never a stack overflow or a panic.

use asyncify_transform::{inspect::interface, instrument, Error, Options};

fn leb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(contents.len() as u64, out);
    out.extend_from_slice(contents);
}

fn name(s: &str, out: &mut Vec<u8>) {
    leb(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A module importing `env.sleep: [] -> []` (function 0), with one memory and
/// function 1 exported as `run`, whose body is `locals` (the encoded local
/// declarations) then `code` (without the final `end`).
fn module(locals: &[u8], code: &[u8]) -> Vec<u8> {
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    section(1, b"\x01\x60\x00\x00", &mut out);
    let mut imports = vec![1];
    name("env", &mut imports);
    name("sleep", &mut imports);
    imports.extend_from_slice(&[0, 0]);
    section(2, &imports, &mut out);
    section(3, b"\x01\x00", &mut out);
    section(5, b"\x01\x00\x01", &mut out);
    let mut exports = vec![1];
    name("run", &mut exports);
    exports.extend_from_slice(&[0, 1]);
    section(7, &exports, &mut out);
    let mut body = locals.to_vec();
    body.extend_from_slice(code);
    body.push(0x0b);
    let mut code_section = vec![1];
    leb(body.len() as u64, &mut code_section);
    code_section.extend_from_slice(&body);
    section(10, &code_section, &mut out);
    out
}

/// `depth` nested constructs (cycling through `opens`) around a call to the
/// suspending import.
fn nested(depth: usize, opens: &[&[u8]]) -> Vec<u8> {
    let mut code = Vec::with_capacity(depth * 4 + 3);
    for i in 0..depth {
        code.extend_from_slice(opens[i % opens.len()]);
    }
    code.extend_from_slice(&[0x10, 0x00]);
    code.resize(code.len() + depth, 0x0b);
    module(&[0], &code)
}

const BLOCK: &[u8] = &[0x02, 0x40];

fn points(wasm: &[u8]) -> u32 {
    let out = instrument(wasm, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    out.instrumented.iter().map(|f| f.points).sum()
}

#[test]
fn hundred_thousand_nested_blocks() {
    assert_eq!(points(&nested(100_000, &[BLOCK])), 1);
}

#[test]
fn a_million_nested_blocks() {
    assert_eq!(points(&nested(1_000_000, &[BLOCK])), 1);
}

#[test]
fn hundred_thousand_nested_constructs_of_every_kind() {
    // block, loop, if, legacy try, try_table (no catch clauses)
    let opens: [&[u8]; 5] = [
        BLOCK,
        &[0x03, 0x40],
        &[0x41, 0x01, 0x04, 0x40],
        &[0x06, 0x40],
        &[0x1f, 0x40, 0x00],
    ];
    assert_eq!(points(&nested(100_000, &opens)), 1);
}

#[test]
fn nested_arms_and_handlers_with_a_point_each() {
    // `if` with a call in each `else`, and legacy `try` with a call in each
    // `catch_all`: one point per level, nested 5,000 deep.
    let depth = 5_000;
    let mut code = [0x41, 0x01, 0x04, 0x40].repeat(depth);
    code.extend_from_slice(&[0x10, 0x00]);
    code.extend_from_slice(&[0x05, 0x10, 0x00, 0x0b].repeat(depth));
    assert_eq!(points(&module(&[0], &code)), depth as u32 + 1);
    let mut code = [0x06, 0x40].repeat(depth);
    code.extend_from_slice(&[0x10, 0x00]);
    code.extend_from_slice(&[0x19, 0x10, 0x00, 0x0b].repeat(depth));
    assert_eq!(points(&module(&[0], &code)), depth as u32 + 1);
}

#[test]
fn deeply_nested_text() {
    let depth = 100_000;
    let wat = format!(
        r#"(module (import "env" "sleep" (func $s)) (memory 1)
            (func (export "run") {}(call $s){}))"#,
        "(block ".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(points(wat.as_bytes()), 1);
}

fn assert_component(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(e @ Error::Component) => {
            let message = e.to_string();
            assert!(message.contains("WebAssembly component"), "{message}");
            assert!(message.contains("wasm-tools"), "{message}");
        }
        other => panic!("expected Error::Component, got {other:?}"),
    }
}

#[test]
fn components_are_refused_with_what_to_do() {
    let text = r#"(component
        (core module $m
            (import "env" "sleep" (func $s))
            (memory 1)
            (func (export "run") (call $s))))"#;
    let binary = wat::parse_str(text).unwrap();
    let empty = b"\0asm\x0d\x00\x01\x00".to_vec();
    let commented = format!(";; a component\n(; block (; nested ;) ;)\n{text}");
    let broken = "(component (core module (func (call 99))))";
    for input in [
        binary.as_slice(),
        &empty,
        text.as_bytes(),
        commented.as_bytes(),
        broken.as_bytes(),
    ] {
        assert_component(instrument(input, &Options::default()));
        assert_component(interface(input));
        let secondary = Options {
            secondary_memory: Some(1),
            ..Options::default()
        };
        assert_component(instrument(input, &secondary));
    }
    // A module whose text merely mentions components is still a module.
    let module = r#"(module $component (memory 1) (func $component))"#;
    assert!(instrument(module.as_bytes(), &Options::default()).is_ok());
}

#[test]
fn unknown_versions_are_clean_errors() {
    for header in [
        &b"\0asm\x02\x00\x00\x00"[..],
        b"\0asm\x0d\x00\x02\x00",
        b"\0asm",
    ] {
        match instrument(header, &Options::default()) {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("{header:?}: expected InvalidInput, got {other:?}"),
        }
    }
}

/// A body declaring `count` locals of type `ty`, setting each before a
/// point and reading each after `points` points.
fn live_locals(count: u32, ty: u8, points: usize) -> Vec<u8> {
    let mut locals = vec![1];
    leb(u64::from(count), &mut locals);
    locals.push(ty);
    let mut code = Vec::new();
    let konst = if ty == 0x7e { 0x42 } else { 0x41 };
    for i in 0..count {
        code.extend_from_slice(&[konst, 0x01, 0x21]);
        leb(u64::from(i), &mut code);
    }
    code.extend_from_slice(&[0x10, 0x00].repeat(points));
    for i in 0..count {
        code.push(0x20);
        leb(u64::from(i), &mut code);
        code.push(0x1a);
    }
    module(&locals, &code)
}

#[test]
fn fifty_thousand_live_locals_is_over_the_locals_limit() {
    match instrument(&live_locals(50_000, 0x7f, 1), &Options::default()) {
        Err(e @ Error::Limit(_)) => {
            let message = e.to_string();
            assert!(
                message.contains("over the limit of 50000 locals per function"),
                "{message}"
            );
            assert!(message.contains("func 1"), "{message}");
            assert!(!message.contains("please report"), "{message}");
        }
        other => panic!("expected Error::Limit, got {other:?}"),
    }
    // Room for what the transform adds: instrumented.
    assert_eq!(points(&live_locals(49_990, 0x7f, 1)), 1);
}

#[test]
fn large_frames_at_many_points_stay_within_the_body_size_limit() {
    // 50 points each saving 49,990 i64 locals: a frame-writing block per
    // point would be over 7,654,321 bytes; the points share one instead.
    let out = instrument(&live_locals(49_990, 0x7e, 50), &Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.instrumented[0].points, 50);
    assert_eq!(out.instrumented[0].saved_locals, 49_990);
    // The points save the same locals, so exact saves share one block too.
    let exact = Options {
        exact_saves: true,
        ..Options::default()
    };
    let out = instrument(&live_locals(49_990, 0x7e, 50), &exact).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.instrumented[0].saved_per_point, vec![49_990; 50]);
}

#[test]
fn secondary_memory_larger_than_a_32_bit_memory_is_refused() {
    let wasm = nested(1, &[BLOCK]);
    for pages in [65_537, 1 << 32, u64::MAX] {
        let options = Options {
            secondary_memory: Some(pages),
            ..Options::default()
        };
        match instrument(&wasm, &options) {
            Err(e @ Error::Options(_)) => {
                let message = e.to_string();
                assert!(message.contains("at most 65536 pages"), "{message}");
            }
            other => panic!("{pages} pages: expected Error::Options, got {other:?}"),
        }
    }
    let options = Options {
        secondary_memory: Some(65_536),
        ..Options::default()
    };
    assert!(instrument(&wasm, &options).is_ok());
}
