//! The memory plan: each buffer lives from the first step that touches it to the last (the host
//! writes inputs before their phase and reads outputs after the run), and buffers whose lives do
//! not overlap share arena space, placed first-fit by offset.

use super::program::{Operand, Program};

/// Buffer offsets are multiples of this many f32 (one cache line).
const ALIGN: usize = 16;

/// Where each buffer sits in the arena, and the arena's length in f32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub offsets: Vec<usize>,
    pub len: usize,
    /// The sum of all buffer lengths (what an arena without reuse would need).
    pub unshared: usize,
}

/// [first, last] step of each buffer's life.
pub fn lifetimes(p: &Program) -> Vec<(usize, usize)> {
    let end = p.steps.len();
    let mut life = vec![(usize::MAX, 0usize); p.buffers.len()];
    fn touch(life: &mut [(usize, usize)], b: usize, t: usize) {
        let l = &mut life[b];
        l.0 = l.0.min(t);
        l.1 = l.1.max(t);
    }
    for (t, step) in p.steps.iter().enumerate() {
        let (reads, writes) = step.operands();
        for o in reads {
            if let Operand::Buffer(b) = o {
                touch(&mut life, b, t);
            }
        }
        writes.into_iter().for_each(|b| touch(&mut life, b, t));
    }
    // Inputs are written before the first step of the phase that reads them; which phase that
    // is, the first read tells.
    for b in p.inputs.iter().filter_map(|port| match port.operand {
        Operand::Buffer(b) => Some(b),
        Operand::Const(_) => None,
    }) {
        let start = if life[b].0 >= p.split && life[b].0 != usize::MAX {
            p.split
        } else {
            0
        };
        touch(&mut life, b, start);
    }
    for &b in &p.kept {
        touch(&mut life, b, end);
    }
    for l in &mut life {
        if l.0 == usize::MAX {
            *l = (end, end);
        }
    }
    life
}

/// Places every buffer: in order of first use, at the lowest offset free for its whole life.
pub fn plan(p: &Program) -> Layout {
    let life = lifetimes(p);
    let mut order: Vec<usize> = (0..p.buffers.len()).collect();
    order.sort_by_key(|&b| (life[b].0, std::cmp::Reverse(p.buffers[b])));
    let mut offsets = vec![0; p.buffers.len()];
    // Placed buffers still alive: (offset, length, last step), kept sorted by offset.
    let mut active: Vec<(usize, usize, usize)> = Vec::new();
    let mut len = 0;
    for b in order {
        let (first, last) = life[b];
        active.retain(|&(_, _, end)| end >= first);
        let size = p.buffers[b].max(1).next_multiple_of(ALIGN);
        let mut at = 0;
        let mut slot = active.len();
        for (i, &(o, l, _)) in active.iter().enumerate() {
            if o >= at + size {
                slot = i;
                break;
            }
            at = at.max(o + l);
        }
        offsets[b] = at;
        active.insert(slot, (at, size, last));
        len = len.max(at + size);
    }
    Layout {
        offsets,
        len,
        unshared: p
            .buffers
            .iter()
            .map(|&l| l.max(1).next_multiple_of(ALIGN))
            .sum(),
    }
}
