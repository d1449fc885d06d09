//! A tiny eBPF assembler: the instructions the bind-mode programs need, named registers and
//! helpers, and labels for jumps (resolved when the program is finished). Each program in
//! [`super::progs`] is written with it as plain Rust, one instruction per call, so that it can
//! be read next to the kernel's instruction set documentation
//! (Documentation/bpf/standardization/instruction-set.rst) and reviewed without a compiler.

use std::collections::HashMap;

/// One 8-byte eBPF instruction, as the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// A register: r0 (return values), r1–r5 (arguments, clobbered by calls), r6–r9 (kept across
/// calls), r10 (the read-only frame pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const FP: Reg = Reg(10);

/// Access sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
}

/// The kernel helpers the programs call, by their number in `enum bpf_func_id` (stable ABI).
pub mod helper {
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const BIND: i32 = 64;
    pub const GET_LOCAL_STORAGE: i32 = 81;
    pub const SK_LOOKUP_TCP: i32 = 84;
    pub const SK_LOOKUP_UDP: i32 = 85;
    pub const SK_RELEASE: i32 = 86;
    pub const SKB_LOAD_BYTES: i32 = 26;
    pub const SK_ANCESTOR_CGROUP_ID: i32 = 129;
    pub const SET_RETVAL: i32 = 187;
}

// Instruction classes, operations and sources (include/uapi/linux/bpf_common.h, bpf.h).
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const MEM: u8 = 0x60;
const IMM: u8 = 0x00;
const K: u8 = 0x00;
const X: u8 = 0x08;

const OP_ADD: u8 = 0x00;
const OP_AND: u8 = 0x50;
const OP_LSH: u8 = 0x60;
const OP_MOV: u8 = 0xb0;

const J_JA: u8 = 0x00;
const J_EQ: u8 = 0x10;
const J_GT: u8 = 0x20;
const J_NE: u8 = 0x50;
const J_CALL: u8 = 0x80;
const J_EXIT: u8 = 0x90;

/// `src_reg` of a 64-bit load holding a map's file descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of a call to a kernel function by its BTF id.
const PSEUDO_KFUNC_CALL: u8 = 2;

/// A comparison for conditional jumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    /// Unsigned greater than.
    Gt,
}

impl Cmp {
    fn op(self) -> u8 {
        match self {
            Cmp::Eq => J_EQ,
            Cmp::Ne => J_NE,
            Cmp::Gt => J_GT,
        }
    }
}

/// A program being written: instructions, labels and the jumps waiting for them.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: HashMap<String, usize>,
    /// (instruction index, label) of jumps to resolve.
    jumps: Vec<(usize, String)>,
    /// (instruction index, map slot) of 64-bit loads to fill with a map's fd at load time.
    maps: Vec<usize>,
    fresh: usize,
}

fn regs(dst: Reg, src: Reg) -> u8 {
    (src.0 << 4) | (dst.0 & 0x0f)
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.insns.push(Insn { code, regs: regs(dst, src), off, imm });
    }

    /// A label name not used before in this program (for jumps inside a generated block).
    pub fn fresh(&mut self, what: &str) -> String {
        self.fresh += 1;
        format!("{what}.{}", self.fresh)
    }

    /// Places `name` at the next instruction.
    pub fn label(&mut self, name: &str) {
        let at = self.insns.len();
        assert!(self.labels.insert(name.to_string(), at).is_none(), "label {name} placed twice");
    }

    // --- moves and arithmetic (64-bit) ---

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | OP_MOV | K, dst, R0, 0, imm);
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(ALU64 | OP_MOV | X, dst, src, 0, 0);
    }

    /// `dst += imm`.
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | OP_ADD | K, dst, R0, 0, imm);
    }

    /// `dst += src`.
    pub fn add(&mut self, dst: Reg, src: Reg) {
        self.push(ALU64 | OP_ADD | X, dst, src, 0, 0);
    }

    /// `dst &= imm`.
    pub fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | OP_AND | K, dst, R0, 0, imm);
    }

    /// `dst <<= imm`.
    pub fn lsh_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | OP_LSH | K, dst, R0, 0, imm);
    }

    /// `dst = imm64` (two instruction slots).
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) {
        self.push(LD | IMM | Size::DW.bits(), dst, R0, 0, imm as u32 as i32);
        self.push(0, R0, R0, 0, (imm >> 32) as u32 as i32);
    }

    /// `dst = the map` of this program (filled in with the map's fd when it is loaded).
    pub fn ld_map(&mut self, dst: Reg) {
        self.maps.push(self.insns.len());
        self.push(LD | IMM | Size::DW.bits(), dst, Reg(PSEUDO_MAP_FD), 0, 0);
        self.push(0, R0, R0, 0, 0);
    }

    // --- memory ---

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(LDX | MEM | size.bits(), dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(STX | MEM | size.bits(), dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.push(ST | MEM | size.bits(), dst, R0, off, imm);
    }

    // --- jumps ---

    fn jump_to(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, label: &str) {
        self.jumps.push((self.insns.len(), label.to_string()));
        self.push(code, dst, src, 0, imm);
    }

    /// `goto label`.
    pub fn ja(&mut self, label: &str) {
        self.jump_to(JMP | J_JA, R0, R0, 0, label);
    }

    /// `if (u32)dst CMP (u32)imm goto label`: 32-bit compare, for addresses and fields read as
    /// 32-bit words (the immediate is not sign-extended into a 64-bit compare).
    pub fn jmp32_imm(&mut self, cmp: Cmp, dst: Reg, imm: u32, label: &str) {
        self.jump_to(JMP32 | cmp.op() | K, dst, R0, imm as i32, label);
    }

    /// `if (u32)dst CMP (u32)src goto label`.
    pub fn jmp32(&mut self, cmp: Cmp, dst: Reg, src: Reg, label: &str) {
        self.jump_to(JMP32 | cmp.op() | X, dst, src, 0, label);
    }

    /// `if dst CMP imm goto label`, 64-bit (imm sign-extended): pointers and 64-bit ids.
    pub fn jmp_imm(&mut self, cmp: Cmp, dst: Reg, imm: i32, label: &str) {
        self.jump_to(JMP | cmp.op() | K, dst, R0, imm, label);
    }

    /// `if dst CMP src goto label`, 64-bit.
    pub fn jmp(&mut self, cmp: Cmp, dst: Reg, src: Reg, label: &str) {
        self.jump_to(JMP | cmp.op() | X, dst, src, 0, label);
    }

    /// Calls kernel helper `id` ([`helper`]): arguments in r1–r5, result in r0.
    pub fn call(&mut self, id: i32) {
        self.push(JMP | J_CALL, R0, R0, 0, id);
    }

    /// Calls the kernel function whose BTF id (in vmlinux's BTF) is `btf_id`.
    pub fn call_kfunc(&mut self, btf_id: u32) {
        self.push(JMP | J_CALL, R0, Reg(PSEUDO_KFUNC_CALL), 0, btf_id as i32);
    }

    /// `return r0`.
    pub fn exit(&mut self) {
        self.push(JMP | J_EXIT, R0, R0, 0, 0);
    }

    /// `r0 = value; return r0`.
    pub fn ret(&mut self, value: i32) {
        self.mov_imm(R0, value);
        self.exit();
    }

    /// The finished program: every jump resolved. `map_fd` fills the map loads.
    pub fn finish(mut self, map_fd: Option<i32>) -> Result<Vec<Insn>, String> {
        for (at, label) in std::mem::take(&mut self.jumps) {
            let target = *self.labels.get(&label).ok_or_else(|| format!("jump to undefined label {label}"))?;
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| format!("jump to {label} out of range"))?;
        }
        for at in std::mem::take(&mut self.maps) {
            let fd = map_fd.ok_or("the program uses a map but none was given")?;
            self.insns[at].imm = fd;
        }
        Ok(self.insns)
    }

    /// How many instruction slots so far.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel_documents() {
        let mut a = Asm::new();
        a.mov_imm(R0, 1); // b7 00 00 00 01 00 00 00
        a.load(Size::W, R2, R6, 4); // 61 62 04 00 00 00 00 00
        a.store(Size::W, R6, 4, R2); // 63 26 04 00 00 00 00 00
        a.store_imm(Size::H, FP, -16, 2); // 6a 0a f0 ff 02 00 00 00
        a.jmp32_imm(Cmp::Eq, R2, 0x0100_007f, "out"); // 16 02 02 00 7f 00 00 01
        a.call(helper::BIND); // 85 00 00 00 40 00 00 00
        a.label("out");
        a.exit(); // 95
        let p = a.finish(None).unwrap();
        let bytes: Vec<[u8; 8]> = p
            .iter()
            .map(|i| {
                let mut b = [0u8; 8];
                b[0] = i.code;
                b[1] = i.regs;
                b[2..4].copy_from_slice(&i.off.to_le_bytes());
                b[4..8].copy_from_slice(&i.imm.to_le_bytes());
                b
            })
            .collect();
        assert_eq!(bytes[0], [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[1], [0x61, 0x62, 4, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[2], [0x63, 0x26, 4, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[3], [0x6a, 0x0a, 0xf0, 0xff, 2, 0, 0, 0]);
        // Jumps count from the next instruction: over the call, onto the exit.
        assert_eq!(bytes[4], [0x16, 0x02, 1, 0, 0x7f, 0, 0, 1]);
        assert_eq!(bytes[5], [0x85, 0, 0, 0, 64, 0, 0, 0]);
        assert_eq!(bytes[6], [0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn undefined_labels_and_missing_maps_are_errors() {
        let mut a = Asm::new();
        a.ja("nowhere");
        assert!(a.finish(None).unwrap_err().contains("nowhere"));
        let mut a = Asm::new();
        a.ld_map(R1);
        assert!(a.finish(None).is_err());
        let mut a = Asm::new();
        a.ld_map(R1);
        let p = a.finish(Some(7)).unwrap();
        assert_eq!((p[0].code, p[0].regs, p[0].imm), (0x18, 0x11, 7));
        assert_eq!(p.len(), 2);
    }
}
