//! The raw input of a property case: a byte vector that shrinks fast.
//!
//! proptest's own `vec(any::<u8>(), ..)` shrinks by deleting one element at
//! a time, which takes tens of thousands of runs for a 20 kB input. [`Bytes`]
//! shrinks like delta debugging instead: delete halves, then quarters, ...
//! down to single bytes, then zero chunks the same way, and repeat while that
//! makes progress. wasm-smith reads choices from the front and lengths from
//! the back of its input, so a shorter input is a smaller module.

use std::fmt;
use std::ops::RangeInclusive;

use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;

/// The bytes a case is generated from. Printed as hex, so that failure
/// reports and the regressions file stay readable.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes: ", self.0.len())?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Byte vectors with a length in `len`.
pub fn bytes(len: RangeInclusive<usize>) -> BytesStrategy {
    BytesStrategy { len }
}

/// See [`bytes`].
#[derive(Clone, Debug)]
pub struct BytesStrategy {
    len: RangeInclusive<usize>,
}

impl Strategy for BytesStrategy {
    type Tree = BytesTree;
    type Value = Bytes;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let initial = proptest::collection::vec(any::<u8>(), self.len.clone())
            .new_tree(runner)?
            .current();
        Ok(BytesTree::new(initial))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Delete,
    Zero,
    Done,
}

/// The shrinking state: `accepted` is the simplest input known to fail,
/// `candidate` the simplification under test. The runner calls `simplify`
/// after a failure (the candidate is kept) and `complicate` after a pass (it
/// is dropped); either way the next candidate is proposed at once.
#[derive(Clone, Debug)]
pub struct BytesTree {
    accepted: Vec<u8>,
    candidate: Option<Vec<u8>>,
    pass: Pass,
    chunk: usize,
    pos: usize,
    /// Whether any candidate was kept during the current round of passes.
    progress: bool,
}

impl BytesTree {
    fn new(initial: Vec<u8>) -> Self {
        let chunk = (initial.len() / 2).max(1);
        BytesTree {
            accepted: initial,
            candidate: None,
            pass: Pass::Delete,
            chunk,
            pos: 0,
            progress: false,
        }
    }

    /// Proposes the next candidate; false when there is none left.
    fn propose(&mut self) -> bool {
        loop {
            let len = self.accepted.len();
            match self.pass {
                Pass::Done => return false,
                _ if self.pos >= len => {
                    if self.chunk > 1 {
                        self.chunk /= 2;
                    } else if self.pass == Pass::Delete {
                        self.pass = Pass::Zero;
                        self.chunk = (len / 2).max(1);
                    } else if self.progress {
                        self.pass = Pass::Delete;
                        self.chunk = (len / 2).max(1);
                        self.progress = false;
                    } else {
                        self.pass = Pass::Done;
                    }
                    self.pos = 0;
                }
                Pass::Delete => {
                    let end = (self.pos + self.chunk).min(len);
                    let mut c = self.accepted.clone();
                    c.drain(self.pos..end);
                    self.candidate = Some(c);
                    return true;
                }
                Pass::Zero => {
                    let end = (self.pos + self.chunk).min(len);
                    if self.accepted[self.pos..end].iter().all(|&b| b == 0) {
                        self.pos = end;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    c[self.pos..end].fill(0);
                    self.candidate = Some(c);
                    return true;
                }
            }
        }
    }
}

impl ValueTree for BytesTree {
    type Value = Bytes;

    fn current(&self) -> Bytes {
        Bytes(self.candidate.as_ref().unwrap_or(&self.accepted).clone())
    }

    fn simplify(&mut self) -> bool {
        if let Some(c) = self.candidate.take() {
            // The candidate still fails: keep it. A deletion shifted the
            // rest down, so the next chunk starts at the same place.
            if self.pass == Pass::Zero {
                self.pos += self.chunk;
            }
            self.accepted = c;
            self.progress = true;
        }
        self.propose()
    }

    fn complicate(&mut self) -> bool {
        if self.candidate.take().is_none() {
            return false;
        }
        self.pos += self.chunk;
        self.propose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shrinks `initial` against `fails` the way the runner does.
    fn shrink(initial: Vec<u8>, fails: impl Fn(&[u8]) -> bool) -> (Vec<u8>, usize) {
        let mut tree = BytesTree::new(initial);
        let mut runs = 0;
        let mut last = tree.current().0;
        if tree.simplify() {
            loop {
                runs += 1;
                let v = tree.current().0;
                if fails(&v) {
                    last = v;
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
        }
        (last, runs)
    }

    #[test]
    fn shrinks_to_the_bytes_that_matter() {
        let initial: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + 3) as u8).collect();
        // Fails when it contains 0x42 followed (anywhere later) by 0x99.
        let fails = |v: &[u8]| match v.iter().position(|&b| b == 0x42) {
            Some(i) => v[i..].contains(&0x99),
            None => false,
        };
        assert!(fails(&initial));
        let (min, runs) = shrink(initial, fails);
        assert_eq!(min, vec![0x42, 0x99]);
        assert!(runs < 2_000, "{runs} runs");
    }

    #[test]
    fn zeroes_what_cannot_be_deleted() {
        let (min, _) = shrink(vec![5, 6, 7, 8], |v| v.len() >= 3);
        assert_eq!(min, vec![0, 0, 0]);
    }
}
