//! Liveness of locals after each suspension point, by backward dataflow over
//! the control-flow graph of a structured body.
//!
//! A local needs saving when some path from the point reaches a read of it
//! before a write. Branches, loops, `if` arms, early exits and exception
//! handlers are edges of the graph; a block of the graph ends after every
//! operator that branches and after every suspension point.

use wasmparser::{Catch, FunctionBody, Operator};

use crate::Error;

/// A set of local indices.
#[derive(Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn has(&self, i: u32) -> bool {
        self.0[i as usize / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }
}

struct Node {
    /// Read before written in this node.
    gen: Bits,
    /// Written in this node.
    kill: Bits,
    succ: Vec<usize>,
}

enum FrameKind {
    Block,
    Loop,
    If {
        source: usize,
        has_else: bool,
    },
    /// A legacy `try` or a `try_table`: `handlers` stands for where a throw
    /// inside may land.
    Try {
        handlers: usize,
        /// Where an exception that no clause catches goes next (the handlers
        /// of the enclosing `try`), if anywhere.
        outer: Option<usize>,
        /// A `catch_all` (or `catch_all_ref`) clause catches every exception.
        catches_all: bool,
    },
}

struct Frame {
    kind: FrameKind,
    /// Where a branch to this label goes.
    target: usize,
    /// The node after `end`.
    end: usize,
    /// The handlers an exception thrown directly inside this frame reaches
    /// first (kept per frame so finding them costs nothing at any depth).
    catcher: Option<usize>,
}

struct Graph {
    nodes: Vec<Node>,
    locals: usize,
}

impl Graph {
    fn node(&mut self) -> usize {
        self.nodes.push(Node {
            gen: Bits::new(self.locals),
            kill: Bits::new(self.locals),
            succ: Vec::new(),
        });
        self.nodes.len() - 1
    }
    fn edge(&mut self, from: usize, to: usize) {
        self.nodes[from].succ.push(to);
    }
}

/// For a body whose suspension points are the calls at operator indices
/// `points` (increasing), returns, for each point, the `locals` (parameters
/// first) live after it, in increasing order.
pub fn live_after_points(
    body: &FunctionBody<'_>,
    locals: usize,
    points: &[usize],
) -> Result<Vec<Vec<u32>>, Error> {
    let mut builder = Builder::new(locals, points);
    let mut ops = body.get_operators_reader()?;
    let mut index = 0usize;
    while !ops.eof() {
        let op = ops.read()?;
        builder.operator(index, &op)?;
        index += 1;
    }
    let live_in = solve(&builder.g, locals);
    Ok(builder
        .after_point
        .iter()
        .map(|&p| (0..locals as u32).filter(|&l| live_in[p].has(l)).collect())
        .collect())
}

/// Builds the control-flow graph of a body, one operator at a time.
struct Builder<'p> {
    g: Graph,
    /// The open constructs, the function's first.
    frames: Vec<Frame>,
    /// The node the current operator belongs to.
    cur: usize,
    /// The function's exit.
    exit: usize,
    /// The suspension points, by operator index, and how many were passed.
    points: &'p [usize],
    next_point: usize,
    /// Per point passed: the node right after it.
    after_point: Vec<usize>,
}

impl<'p> Builder<'p> {
    fn new(locals: usize, points: &'p [usize]) -> Self {
        let mut g = Graph {
            nodes: Vec::new(),
            locals,
        };
        let exit = g.node();
        let entry = g.node();
        let func_end = g.node();
        g.edge(func_end, exit);
        Builder {
            g,
            frames: vec![Frame {
                kind: FrameKind::Block,
                target: func_end,
                end: func_end,
                catcher: None,
            }],
            cur: entry,
            exit,
            points,
            next_point: 0,
            after_point: Vec::with_capacity(points.len()),
        }
    }

    /// Adds operator `op`, the `this`-th of the body.
    fn operator(&mut self, this: usize, op: &Operator<'_>) -> Result<(), Error> {
        match op {
            Operator::LocalGet { local_index } => {
                let n = &mut self.g.nodes[self.cur];
                if !n.kill.has(*local_index) {
                    n.gen.set(*local_index);
                }
            }
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                self.g.nodes[self.cur].kill.set(*local_index);
            }
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => self.open(op),
            Operator::Else | Operator::Catch { .. } | Operator::CatchAll => self.clause(op),
            Operator::End | Operator::Delegate { .. } => self.close(op),
            Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrOnNull { .. }
            | Operator::BrOnNonNull { .. }
            | Operator::BrOnCast { .. }
            | Operator::BrOnCastFail { .. }
            | Operator::BrTable { .. } => self.branch(op)?,
            Operator::Call { .. } | Operator::CallIndirect { .. } | Operator::CallRef { .. } => {
                self.call(this)
            }
            _ => self.leave(this, op),
        }
        Ok(())
    }

    /// Opens a construct.
    fn open(&mut self, op: &Operator<'_>) {
        match op {
            Operator::Block { .. } => {
                let end = self.g.node();
                self.frames.push(Frame {
                    kind: FrameKind::Block,
                    target: end,
                    end,
                    catcher: innermost_handlers(&self.frames),
                });
            }
            Operator::Loop { .. } => {
                let header = self.g.node();
                let end = self.g.node();
                self.g.edge(self.cur, header);
                self.cur = header;
                self.frames.push(Frame {
                    kind: FrameKind::Loop,
                    target: header,
                    end,
                    catcher: innermost_handlers(&self.frames),
                });
            }
            Operator::If { .. } => {
                let then = self.g.node();
                let end = self.g.node();
                self.g.edge(self.cur, then);
                self.frames.push(Frame {
                    kind: FrameKind::If {
                        source: self.cur,
                        has_else: false,
                    },
                    target: end,
                    end,
                    catcher: innermost_handlers(&self.frames),
                });
                self.cur = then;
            }
            Operator::Try { .. } => {
                let handlers = self.g.node();
                let end = self.g.node();
                self.frames.push(Frame {
                    kind: FrameKind::Try {
                        handlers,
                        outer: innermost_handlers(&self.frames),
                        catches_all: false,
                    },
                    target: end,
                    end,
                    catcher: Some(handlers),
                });
            }
            Operator::TryTable { try_table } => {
                let end = self.g.node();
                // A throw inside lands on one of the catch labels; a node
                // standing for "the handlers" fans out to all of them.
                let catches = self.g.node();
                let catches_all = try_table
                    .catches
                    .iter()
                    .any(|c| matches!(c, Catch::All { .. } | Catch::AllRef { .. }));
                for c in &try_table.catches {
                    let label = match c {
                        Catch::One { label, .. }
                        | Catch::OneRef { label, .. }
                        | Catch::All { label }
                        | Catch::AllRef { label } => *label,
                    };
                    let target = self.frames[self.frames.len() - 1 - label as usize].target;
                    self.g.edge(catches, target);
                }
                let outer = innermost_handlers(&self.frames);
                if let (false, Some(outer)) = (catches_all, outer) {
                    self.g.edge(catches, outer);
                }
                self.frames.push(Frame {
                    // The edge outward is in place already.
                    kind: FrameKind::Try {
                        handlers: catches,
                        outer: None,
                        catches_all,
                    },
                    target: end,
                    end,
                    catcher: Some(catches),
                });
            }
            _ => {}
        }
    }

    /// An `else` arm or a legacy handler starts.
    fn clause(&mut self, op: &Operator<'_>) {
        match op {
            Operator::Else => {
                let frame = self.frames.last_mut().expect("if frame");
                let end = frame.end;
                if let FrameKind::If { source, has_else } = &mut frame.kind {
                    *has_else = true;
                    let source = *source;
                    self.g.edge(self.cur, end);
                    let arm = self.g.node();
                    self.g.edge(source, arm);
                    self.cur = arm;
                }
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                let frame = self.frames.last_mut().expect("try frame");
                let end = frame.end;
                if let FrameKind::Try {
                    handlers,
                    catches_all,
                    outer,
                } = &mut frame.kind
                {
                    // Exceptions thrown in a clause go to the enclosing `try`.
                    frame.catcher = *outer;
                    *catches_all |= matches!(op, Operator::CatchAll);
                    let handlers = *handlers;
                    self.g.edge(self.cur, end);
                    let arm = self.g.node();
                    self.g.edge(handlers, arm);
                    self.cur = arm;
                }
            }
            _ => {}
        }
    }

    /// A construct ends (`end`, or `delegate` for a legacy `try`).
    fn close(&mut self, op: &Operator<'_>) {
        match op {
            Operator::End | Operator::Delegate { .. } => {
                let frame = self.frames.pop().expect("frame");
                if let FrameKind::If {
                    source,
                    has_else: false,
                } = frame.kind
                {
                    self.g.edge(source, frame.end);
                }
                match (op, &frame.kind) {
                    (Operator::Delegate { relative_depth }, FrameKind::Try { handlers, .. }) => {
                        // Exceptions go on to the handlers of the `try` at
                        // (or around) the label, if any.
                        let at = self
                            .frames
                            .len()
                            .saturating_sub(1 + *relative_depth as usize);
                        if let Some(to) = innermost_handlers(&self.frames[..=at]) {
                            self.g.edge(*handlers, to);
                        }
                    }
                    (
                        _,
                        FrameKind::Try {
                            handlers,
                            outer: Some(outer),
                            catches_all: false,
                            ..
                        },
                    ) => {
                        // No `catch_all`: other exceptions go on outward.
                        self.g.edge(*handlers, *outer);
                    }
                    _ => {}
                }
                self.g.edge(self.cur, frame.end);
                self.cur = frame.end;
            }
            _ => {}
        }
    }

    /// A branch: edges to its targets.
    fn branch(&mut self, op: &Operator<'_>) -> Result<(), Error> {
        match op {
            Operator::Br { relative_depth } => {
                let t = self.frames[self.frames.len() - 1 - *relative_depth as usize].target;
                self.g.edge(self.cur, t);
                self.cur = self.g.node();
            }
            Operator::BrIf { relative_depth }
            | Operator::BrOnNull { relative_depth }
            | Operator::BrOnNonNull { relative_depth }
            | Operator::BrOnCast { relative_depth, .. }
            | Operator::BrOnCastFail { relative_depth, .. } => {
                let t = self.frames[self.frames.len() - 1 - *relative_depth as usize].target;
                self.g.edge(self.cur, t);
                let next = self.g.node();
                self.g.edge(self.cur, next);
                self.cur = next;
            }
            Operator::BrTable { targets } => {
                for t in targets.targets() {
                    let t = t?;
                    let t = self.frames[self.frames.len() - 1 - t as usize].target;
                    self.g.edge(self.cur, t);
                }
                let t = self.frames[self.frames.len() - 1 - targets.default() as usize].target;
                self.g.edge(self.cur, t);
                self.cur = self.g.node();
            }
            _ => {}
        }
        Ok(())
    }

    /// Control leaves straight-line code: returns, tail calls, traps and throws.
    fn leave(&mut self, this: usize, op: &Operator<'_>) {
        match op {
            // A tail call to an import that may suspend is a point (a plain
            // call, then a return): nothing is live after it.
            Operator::ReturnCall { .. } if self.points.get(self.next_point) == Some(&this) => {
                self.next_point += 1;
                // After the callee resumes it may return or throw.
                let next = self.g.node();
                self.g.edge(self.cur, next);
                self.g.edge(next, self.exit);
                handlers_of(&self.frames, &mut self.g, next);
                self.after_point.push(next);
                self.cur = self.g.node();
            }
            Operator::Return
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. } => {
                self.g.edge(self.cur, self.exit);
                self.cur = self.g.node();
            }
            Operator::Unreachable => {
                self.cur = self.g.node();
            }
            Operator::Throw { .. } | Operator::ThrowRef | Operator::Rethrow { .. } => {
                handlers_of(&self.frames, &mut self.g, self.cur);
                self.cur = self.g.node();
            }
            _ => {}
        }
    }

    /// A call: it may throw, and it may be a suspension point.
    fn call(&mut self, this: usize) {
        // A call may throw: the node ends here, so the handlers see
        // the locals as they are at the call (later writes in the
        // same straight-line code must not hide them).
        let may_catch = handlers_of(&self.frames, &mut self.g, self.cur);
        if self.points.get(self.next_point) == Some(&this) {
            self.next_point += 1;
            // After the callee resumes it may return or throw: the
            // locals read on either path are live after the point.
            let point = self.g.node();
            self.g.edge(self.cur, point);
            handlers_of(&self.frames, &mut self.g, point);
            self.after_point.push(point);
            let next = self.g.node();
            self.g.edge(point, next);
            self.cur = next;
        } else if may_catch {
            let next = self.g.node();
            self.g.edge(self.cur, next);
            self.cur = next;
        }
    }
}

/// Live-in sets of every node: backward dataflow to a fixed point.
fn solve(g: &Graph, locals: usize) -> Vec<Bits> {
    // Backward dataflow to a fixed point; later nodes first converges fastest.
    let n = g.nodes.len();
    let mut live_in: Vec<Bits> = vec![Bits::new(locals); n];
    // One scratch set for every node's new live-in (allocating one per node
    // and round was a fifth of instrumenting yosys).
    let mut inn = Bits::new(locals);
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..n).rev() {
            let node = &g.nodes[i];
            inn.0.fill(0);
            for &s in &node.succ {
                for (o, w) in inn.0.iter_mut().zip(&live_in[s].0) {
                    *o |= w;
                }
            }
            for ((v, gen), kill) in inn.0.iter_mut().zip(&node.gen.0).zip(&node.kill.0) {
                *v = gen | (*v & !kill);
            }
            if inn != live_in[i] {
                live_in[i].0.copy_from_slice(&inn.0);
                changed = true;
            }
        }
    }
    live_in
}

/// Adds the edge for an exception leaving `from` to the innermost enclosing
/// handlers in `frames`; returns whether there are any.
fn handlers_of(frames: &[Frame], g: &mut Graph, from: usize) -> bool {
    match innermost_handlers(frames) {
        Some(h) => {
            g.edge(from, h);
            true
        }
        None => false,
    }
}

/// The node standing for the handlers that an exception thrown inside the
/// innermost of `frames` reaches first: those of the innermost `try` whose
/// body (not one of its legacy clauses) encloses it.
fn innermost_handlers(frames: &[Frame]) -> Option<usize> {
    frames.last().and_then(|f| f.catcher)
}

#[cfg(test)]
mod tests {
    use super::live_after_points;
    use wasmparser::{Operator, Parser, Payload};

    /// Live locals after each `call $tick` (the points) in the last
    /// function of `wat`.
    fn live(wat: &str) -> Vec<Vec<u32>> {
        let wasm = wat::parse_str(wat).expect("test module parses");
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(body) = payload.expect("valid") {
                bodies.push(body);
            }
        }
        let body = bodies.pop().expect("a function");
        let mut locals = 0usize;
        for group in body.get_locals_reader().expect("locals") {
            locals += group.expect("local group").0 as usize;
        }
        // Parameters: this test's functions take `$x i32` only.
        let locals = locals + 1;
        let mut points = Vec::new();
        let mut ops = body.get_operators_reader().expect("operators");
        let mut index = 0;
        while !ops.eof() {
            if let Operator::Call { function_index: 0 } = ops.read().expect("operator") {
                points.push(index);
            }
            index += 1;
        }
        live_after_points(&body, locals, &points).expect("liveness")
    }

    const HEAD: &str = r#"(import "env" "tick" (func $tick (param i32) (result i32)))
        (tag $e)"#;

    #[test]
    fn a_local_read_later_is_live_and_one_written_first_is_not() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $b i32)
                (local.set $a (i32.const 1))
                (local.set $b (i32.const 2))
                (drop (call $tick (i32.const 0)))
                (local.set $b (i32.const 3))
                (i32.add (local.get $a) (local.get $b))))"#
        ));
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn a_loop_back_edge_keeps_a_local_read_at_the_loop_head_live() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $i i32)
                (loop $again
                  (drop (call $tick (local.get $i)))
                  (local.set $x (i32.const 0))
                  (br_if $again (local.get $x)))
                (i32.const 0)))"#
        ));
        // $i is read by the next iteration's call; $x is written before any read.
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn a_local_read_only_by_a_try_table_handler_is_live() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $acc i32)
                (local.set $acc (i32.const 42))
                (block $h (try_table (catch_all $h)
                  (local.set $acc (call $tick (local.get $x)))))
                (local.get $acc)))"#
        ));
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn a_write_after_the_call_does_not_hide_the_handlers_read() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $v i32)
                (local.set $v (i32.const 11))
                (block $h (try_table (catch_all $h)
                  (drop (call $tick (local.get $x)))
                  (local.set $v (i32.const 22))))
                (local.get $v)))"#
        ));
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn legacy_handlers_and_delegate_are_edges() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $b i32)
                try (result i32)
                  try
                    (drop (call $tick (i32.const 0)))
                    (local.set $a (i32.const 0))
                  delegate 0
                  (i32.const 0)
                catch_all
                  (local.get $a)
                end
                try (result i32)
                  (drop (call $tick (i32.const 1)))
                  (local.set $b (i32.const 0))
                  (i32.const 0)
                catch $e
                  (local.get $b)
                end
                (i32.add)))"#
        ));
        assert_eq!(l, vec![vec![1, 2], vec![2]]);
    }

    #[test]
    fn an_exception_thrown_in_a_handler_goes_to_the_outer_try() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $b i32)
                try (result i32)
                  try (result i32)
                    (throw $e)
                  catch_all
                    (drop (call $tick (i32.const 0)))
                    (local.set $b (i32.const 0))
                    (local.set $a (i32.const 0))
                    (i32.const 0)
                  end
                catch_all
                  (local.get $a)
                end))"#
        ));
        // After the call in the inner handler, a throw goes to the outer
        // handler, which reads $a; $b is never read.
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn a_try_table_without_catch_all_passes_other_exceptions_outward() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32)
                (block $outer
                  (try_table (catch_all $outer)
                    (block $inner
                      (try_table (catch $e $inner)
                        (drop (call $tick (i32.const 0)))
                        (local.set $a (i32.const 0))))
                    (return (i32.const 7))))
                (local.get $a)))"#
        ));
        // Only an exception other than $e, caught by the outer `catch_all`,
        // reaches the read of $a.
        assert_eq!(l, vec![vec![1]]);
    }

    #[test]
    fn a_write_on_one_branch_only_keeps_the_local_live() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32)
                (local.set $a (i32.const 5))
                (drop (call $tick (i32.const 0)))
                (if (local.get $x) (then (local.set $a (i32.const 1))))
                (local.get $a)))"#
        ));
        // The else path reads the value from before the call; $x is read by the `if`.
        assert_eq!(l, vec![vec![0, 1]]);
    }

    #[test]
    fn a_local_written_at_the_top_of_each_iteration_is_dead_across_the_back_edge() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32)
                (loop $again
                  (local.set $a (local.get $x))
                  (drop (call $tick (local.get $a)))
                  (br_if $again (local.get $x)))
                (i32.const 0)))"#
        ));
        assert_eq!(l, vec![vec![0]]);
    }

    #[test]
    fn every_br_table_target_is_an_edge() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $c i32) (local $d i32)
                (block $b1
                  (block $b2
                    (drop (call $tick (i32.const 0)))
                    (br_table $b1 $b2 (local.get $x)))
                  (return (local.get $a)))
                (local.set $d (local.get $c))
                (local.get $d)))"#
        ));
        // Both targets are reached: $a by one, $c by the other; $d is written first.
        assert_eq!(l, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn an_if_without_else_keeps_what_its_arm_writes_live() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32)
                (drop (call $tick (i32.const 0)))
                (if (local.get $x) (then (local.set $a (i32.const 1))))
                (local.get $a)))"#
        ));
        // The missing `else` is an edge around the write.
        assert_eq!(l, vec![vec![0, 1]]);
    }

    #[test]
    fn a_legacy_catch_is_reached_from_the_resumed_call_and_from_a_throw() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $b i32)
                try (result i32)
                  (drop (call $tick (i32.const 0)))
                  (local.set $a (i32.const 5))
                  (throw $e)
                catch $e
                  (i32.add (local.get $a) (local.get $b))
                end))"#
        ));
        // The resumed call may itself throw before $a is written, so the
        // handler's read keeps $a live; $b reaches the handler unwritten.
        assert_eq!(l, vec![vec![1, 2]]);
    }

    #[test]
    fn nothing_after_unreachable_is_live() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32)
                (drop (call $tick (i32.const 0)))
                unreachable
                (local.get $a)))"#
        ));
        assert_eq!(l, vec![Vec::<u32>::new()]);
    }

    #[test]
    fn br_on_null_is_an_edge_and_falls_through() {
        let l = live(&format!(
            r#"(module {HEAD} (func (param $x i32) (result i32) (local $a i32) (local $r funcref)
                (block $null
                  (drop (call $tick (i32.const 0)))
                  (drop (br_on_null $null (local.get $r)))
                  (return (local.get $x)))
                (local.get $a)))"#
        ));
        // Both the branch ($a) and the fall-through ($x) are reached.
        assert_eq!(l, vec![vec![0, 1, 2]]);
    }
}
