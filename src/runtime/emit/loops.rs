//! Counted loops for kernel bodies.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use cranelift_frontend::FunctionBuilder;

/// `for i in (start..end).step_by(step) { body(i) }` while `i + step <= end`; leaves the builder
/// in the block after the loop and returns the first `i` that did not fit (where a narrower loop
/// continues).
pub fn for_range(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) -> Value {
    let (head, blk, exit) = (b.create_block(), b.create_block(), b.create_block());
    b.append_block_param(head, types::I64);
    b.append_block_param(exit, types::I64);
    b.ins().jump(head, &[start.into()]);
    b.switch_to_block(head);
    let i = b.block_params(head)[0];
    let last = b.ins().iadd_imm_s(i, step);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, last, end);
    b.ins().brif(fits, blk, &[], exit, &[i.into()]);
    b.switch_to_block(blk);
    body(b, i);
    let next = b.ins().iadd_imm_s(i, step);
    b.ins().jump(head, &[next.into()]);
    b.switch_to_block(exit);
    b.block_params(exit)[0]
}
