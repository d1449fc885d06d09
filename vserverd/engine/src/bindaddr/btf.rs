//! Just enough of the kernel's own type information (BTF, `/sys/kernel/btf/vmlinux`) for the
//! unix-socket programs: the id of the kernel function `bpf_cast_to_kern_ctx`, and where the
//! address and its length lie in `struct bpf_sock_addr_kern`. The unix hooks give a program no
//! field for the path; the kernel's own context structure holds it, and its layout is read
//! here rather than assumed.
//!
//! Format: include/uapi/linux/btf.h. A header, then the type section (each type a 12-byte
//! `struct btf_type` followed by data whose size depends on its kind), then the strings.

use std::path::Path;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// One type: where its 12-byte header starts in the type section.
#[derive(Debug, Clone, Copy)]
struct Type {
    at: usize,
    kind: u32,
    vlen: usize,
    kflag: bool,
    name_off: u32,
}

#[derive(Debug)]
pub struct Btf {
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Index i holds type id i + 1.
    index: Vec<Type>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Btf {
    pub fn vmlinux() -> Result<Btf, String> {
        Self::read(Path::new(VMLINUX))
    }

    pub fn read(path: &Path) -> Result<Btf, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&data).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(data: &[u8]) -> Result<Btf, String> {
        let bad = |what: &str| format!("not BTF as expected: {what}");
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(bad("no little-endian BTF header"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("header"))? as usize;
        let field = |i: usize| u32_at(data, 8 + 4 * i).map(|v| v as usize).ok_or_else(|| bad("header"));
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let section = |off: usize, len: usize| data.get(hdr_len + off..hdr_len + off + len).ok_or_else(|| bad("section out of the file"));
        let types = section(type_off, type_len)?.to_vec();
        let strings = section(str_off, str_len)?.to_vec();
        let mut index = Vec::new();
        let mut at = 0;
        while at + 12 <= types.len() {
            let name_off = u32_at(&types, at).unwrap();
            let info = u32_at(&types, at + 4).unwrap();
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            index.push(Type { at, kind, vlen, kflag: info >> 31 == 1, name_off });
            at += 12
                + match kind {
                    KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                    KIND_ARRAY => 12,
                    KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                    KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                    _ => 0,
                };
        }
        if at != types.len() {
            return Err(bad("the type section does not end on a type"));
        }
        Ok(Btf { types, strings, index })
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        &s[..s.iter().position(|b| *b == 0).unwrap_or(s.len())]
    }

    fn find(&self, kind: u32, name: &str) -> Option<(u32, Type)> {
        self.index.iter().enumerate().find(|(_, t)| t.kind == kind && self.name(t.name_off) == name.as_bytes()).map(|(i, t)| (i as u32 + 1, *t))
    }

    /// The BTF id of kernel function `name`.
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.find(KIND_FUNC, name).map(|(id, _)| id)
    }

    /// The byte offset of `member` in `struct name` (a member at a bit offset that is not a
    /// whole byte is not one the programs read: `None`).
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let (_, t) = self.find(KIND_STRUCT, name)?;
        (0..t.vlen).find_map(|i| {
            let m = t.at + 12 + 12 * i;
            if self.name(u32_at(&self.types, m)?) != member.as_bytes() {
                return None;
            }
            let raw = u32_at(&self.types, m + 8)?;
            // With kflag the low 24 bits are the offset, the high 8 a bitfield's size.
            let bits = if t.kflag { raw & 0x00ff_ffff } else { raw };
            (bits % 8 == 0).then_some(bits / 8)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made BTF: `int`, `struct s { int a; int b; }`, `int f(void)`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0f\0".to_vec();
        let mut types = Vec::new();
        let word = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        // [1] INT "int" size 4, encoding signed, 32 bits
        word(&mut types, 1);
        word(&mut types, KIND_INT << 24);
        word(&mut types, 4);
        word(&mut types, (1 << 24) | 32);
        // [2] STRUCT "s" size 8, two members
        word(&mut types, 5);
        word(&mut types, (KIND_STRUCT << 24) | 2);
        word(&mut types, 8);
        for (name, off) in [(7u32, 0u32), (9, 32)] {
            word(&mut types, name);
            word(&mut types, 1);
            word(&mut types, off);
        }
        // [3] FUNC_PROTO returning int, no parameters; [4] FUNC "f"
        word(&mut types, 0);
        word(&mut types, KIND_FUNC_PROTO << 24);
        word(&mut types, 1);
        word(&mut types, 11);
        word(&mut types, KIND_FUNC << 24);
        word(&mut types, 3);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1);
        out.push(0);
        word(&mut out, 24);
        word(&mut out, 0);
        word(&mut out, types.len() as u32);
        word(&mut out, types.len() as u32);
        word(&mut out, strings.len() as u32);
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_functions_and_members() {
        let b = Btf::parse(&sample()).unwrap();
        assert_eq!(b.func_id("f"), Some(4));
        assert_eq!(b.func_id("g"), None);
        assert_eq!(b.member_offset("s", "a"), Some(0));
        assert_eq!(b.member_offset("s", "b"), Some(4));
        assert_eq!(b.member_offset("s", "c"), None);
    }

    #[test]
    fn rejects_what_is_not_btf() {
        assert!(Btf::parse(b"not btf at all, not at all").is_err());
        let mut s = sample();
        s.truncate(s.len() - 3);
        assert!(Btf::parse(&s).is_err());
    }

    #[test]
    fn this_kernel_describes_the_unix_hook_context() {
        if !Path::new(VMLINUX).exists() {
            return; // a kernel without BTF: bind mode says so at check
        }
        let b = Btf::vmlinux().unwrap();
        assert!(b.func_id("bpf_cast_to_kern_ctx").is_some());
        assert!(b.member_offset("bpf_sock_addr_kern", "uaddr").is_some());
        assert!(b.member_offset("bpf_sock_addr_kern", "uaddrlen").is_some());
    }
}
