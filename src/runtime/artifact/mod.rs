//! Explainer artifacts (`.lrpx`): a compiled explainer in one file that loads without the
//! importer, the passes, the relevance pass or (by default) the compiler. The header is a
//! protobuf message (`proto/explainer.proto`); the payload holds the kernels' machine code, the
//! index tables and the constants, uncompressed and aligned, so loading maps them. Every byte
//! after the fixed prefix is covered by a CRC-32 (the header's, or a payload section's), checked
//! before anything is used.
//!
//! Compatibility goes by [`FORMAT_VERSION`]: any lrpc reads the artifacts of its own format
//! version, whichever lrpc wrote them, and refuses others. A change to what a program means
//! (a step's semantics, a kernel's code shape) bumps the version.

mod convert;
mod proto;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use prost::Message;
use rayon::prelude::*;

use super::code::{Code, MachineCode};
use super::explainer::Spec;
use super::program::Program;
use crate::error::{Error, Result};

pub use write::{Parts, to_bytes, write};

/// The artifact format this lrpc reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// The first bytes of every artifact (PNG-style: a text-mode transfer or truncation to 7 bits
/// breaks it visibly).
pub const MAGIC: [u8; 8] = *b"LRPX\r\n\x1a\n";
/// Bytes before the header.
const PREFIX: usize = 32;
/// The payload starts at a multiple of this (a page), so mapped constants keep their alignment.
const PAYLOAD_ALIGN: usize = 4096;
/// Constants and tables start at multiples of this many bytes in the payload.
const DATA_ALIGN: usize = 64;
/// Machine code of each kernel starts at a multiple of this.
const CODE_ALIGN: usize = 16;
/// Constants are checksummed in sections of at most this many bytes (verified in parallel).
const SECTION_BYTES: usize = 32 << 20;

/// Where an artifact came from: the model file and its digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceInfo {
    pub file: String,
    pub sha256: Vec<u8>,
    pub size: u64,
}

/// A method as data: its name, parameters and overrides (the api turns it back into a
/// `relevance::Method`; nothing here depends on the relevance pass).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodInfo {
    pub name: String,
    pub epsilon: f32,
    pub gamma: f32,
    /// Box bounds: values, and whether they are per channel.
    pub low: (Vec<f32>, bool),
    pub high: (Vec<f32>, bool),
    pub alpha: f32,
    pub beta: f32,
    /// (pattern, rule name, rule text).
    pub overrides: Vec<(String, String, String)>,
    pub samples: usize,
    pub noise_level: f32,
    pub steps: usize,
    /// Arras et al.'s bias factor.
    pub bias_factor: f32,
}

/// The rule one node got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub node: String,
    pub op: String,
    pub rule: String,
}

/// How a loaded program gets its kernels.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum CodeSource {
    /// Map the machine code stored in the artifact (no compiler runs; the default).
    #[default]
    Stored,
    /// Compile the stored kernel descriptions again with Cranelift for this CPU.
    Recompile,
    /// Kernels linked into the binary by an explainer object file: per program, the entry
    /// address of each kernel. Only an object file's own entry table may be given here: its
    /// functions were emitted from the artifact embedded beside them.
    Linked(Arc<[Vec<usize>]>),
}

/// The bytes of an artifact: a mapped file, or data linked into the binary.
pub type Bytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

struct MappedFile(Mmap);

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Bytes copied into memory aligned as an artifact needs.
struct Aligned {
    blocks: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(self.blocks.as_slice());
        &all[..self.len]
    }
}

// SAFETY: `Block` is 64 plain bytes with no padding (size 64, align 64).
unsafe impl bytemuck::Zeroable for Block {}
// SAFETY: as above; any bit pattern is a valid `Block`.
unsafe impl bytemuck::Pod for Block {}

struct Linked(&'static [u8]);

impl AsRef<[u8]> for Linked {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

/// A checked, mapped artifact.
pub struct Artifact {
    path: PathBuf,
    map: Bytes,
    header: proto::Artifact,
    payload: usize,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Artifact({})", self.path.display())
    }
}

/// Whether `path` names an artifact (by its extension; the magic is checked on open).
pub fn is_artifact(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("lrpx"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

impl Artifact {
    /// Maps `path`, checks its prefix, header and every section's checksum, and decodes the
    /// header.
    pub fn open(path: &Path) -> Result<Artifact> {
        let file = std::fs::File::open(path).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        // SAFETY: the mapping is read-only and private to this process; like every mmap it
        // assumes no one truncates the file while it is mapped (then reads fault, as a read(2)
        // would fail). Artifacts are written to a temporary file and renamed into place, so
        // lrpc itself never rewrites a mapped artifact.
        let map =
            unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(|cause| {
                Error::Io {
                    path: path.to_path_buf(),
                    cause,
                }
            })?;
        Artifact::from_bytes(Arc::new(MappedFile(map)), path)
    }

    /// An artifact held in memory (copied once, to the alignment its constants need).
    pub fn from_vec(bytes: &[u8], name: &Path) -> Result<Artifact> {
        let mut blocks = vec![Block([0; 64]); bytes.len().div_ceil(64)];
        let all: &mut [u8] = bytemuck::cast_slice_mut(blocks.as_mut_slice());
        all[..bytes.len()].copy_from_slice(bytes);
        let aligned = Aligned {
            blocks,
            len: bytes.len(),
        };
        Artifact::from_bytes(Arc::new(aligned), name)
    }

    /// An artifact linked into the binary (an explainer object file's data); `name` stands for
    /// the path in errors.
    pub fn from_static(bytes: &'static [u8], name: &Path) -> Result<Artifact> {
        Artifact::from_bytes(Arc::new(Linked(bytes)), name)
    }

    /// Checks and decodes artifact bytes (see [`Artifact::open`]).
    pub fn from_bytes(map: Bytes, path: &Path) -> Result<Artifact> {
        let fail = |reason: String| Error::Artifact {
            file: path.display().to_string(),
            reason,
        };
        if !cfg!(target_endian = "little") {
            return Err(fail(
                "artifacts are read on little-endian machines only".into(),
            ));
        }
        let b: &[u8] = (*map).as_ref();
        if !(b.as_ptr() as usize).is_multiple_of(DATA_ALIGN) {
            return Err(fail(format!(
                "its bytes must start on a {DATA_ALIGN}-byte boundary"
            )));
        }
        if b.len() < PREFIX {
            return Err(fail(format!("{} bytes is too short", b.len())));
        }
        if b[..8] != MAGIC {
            return Err(fail("the file does not start with the lrpx magic".into()));
        }
        if crc32fast::hash(&b[..28]) != u32_at(b, 28) {
            return Err(fail(
                "the fixed prefix is corrupted (checksum mismatch)".into(),
            ));
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(fail(format!(
                "format version {version}; this lrpc ({}) reads version {FORMAT_VERSION} (compile the model again)",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[16..24]);
        let header_len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
        let header_end = PREFIX
            .checked_add(header_len)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                fail(format!(
                    "a header of {header_len} bytes does not fit the file"
                ))
            })?;
        let header_bytes = &b[PREFIX..header_end];
        if crc32fast::hash(header_bytes) != u32_at(b, 24) {
            return Err(fail("the header is corrupted (checksum mismatch)".into()));
        }
        let header = proto::Artifact::decode(header_bytes)
            .map_err(|e| fail(format!("the header does not decode: {e}")))?;
        let payload = header_end.next_multiple_of(PAYLOAD_ALIGN);
        if payload > b.len() {
            return Err(fail("the payload is missing (truncated file)".into()));
        }
        if b[header_end..payload].iter().any(|&x| x != 0) {
            return Err(fail("the padding after the header is not zero".into()));
        }
        check_sections(&header.sections, &b[payload..]).map_err(fail)?;
        Ok(Artifact {
            path: path.to_path_buf(),
            map,
            header,
            payload,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lrpc version that wrote the artifact.
    pub fn lrpc_version(&self) -> &str {
        &self.header.lrpc_version
    }

    pub fn source(&self) -> SourceInfo {
        convert::source(self.header.source.as_ref())
    }

    pub fn method(&self) -> Result<MethodInfo> {
        convert::method(self.header.method.as_ref()).map_err(|e| self.error(e))
    }

    pub fn spec(&self) -> Result<Spec> {
        let method = self.method()?;
        convert::spec(
            self.header.spec.as_ref(),
            &method,
            &self.path.display().to_string(),
        )
        .map_err(|e| self.error(e))
    }

    pub fn rules(&self) -> Vec<RuleInfo> {
        self.header
            .rules
            .iter()
            .map(|r| RuleInfo {
                node: r.node.clone(),
                op: r.op.clone(),
                rule: r.rule.clone(),
            })
            .collect()
    }

    /// The target triple and CPU features the stored code assumes.
    pub fn target(&self) -> (String, Vec<String>) {
        let t = self.header.target.clone().unwrap_or_default();
        (t.triple, t.features)
    }

    /// How many programs it holds (1, or 2 with a batched one).
    pub fn programs(&self) -> usize {
        self.header.programs.len()
    }

    /// Sections as (name, bytes).
    pub fn sections(&self) -> Vec<(String, u64)> {
        self.header
            .sections
            .iter()
            .map(|s| (s.name.clone(), s.length))
            .collect()
    }

    /// The file's size in bytes.
    pub fn file_bytes(&self) -> usize {
        (*self.map).as_ref().len()
    }

    /// Kernels per program.
    pub fn kernel_counts(&self) -> Vec<usize> {
        self.header
            .programs
            .iter()
            .map(|p| p.kernels.len())
            .collect()
    }

    /// Arena bytes per program, as planned when it was saved.
    pub fn arena_bytes(&self) -> Vec<u64> {
        self.header.programs.iter().map(|p| p.arena * 4).collect()
    }

    fn error(&self, reason: String) -> Error {
        Error::Artifact {
            file: self.path.display().to_string(),
            reason,
        }
    }

    /// Program `k`, its constants and tables mapped from the file, and its kernels' code.
    pub fn program(&self, k: usize, code: &CodeSource) -> Result<(Program, Code)> {
        let p = self
            .header
            .programs
            .get(k)
            .ok_or_else(|| self.error(format!("there is no program {k}")))?;
        let payload = &(*self.map).as_ref()[self.payload..];
        let program = convert::program(p, &self.map, self.payload, payload.len())
            .map_err(|e| self.error(format!("program {k}: {e}")))?;
        let code = match code {
            CodeSource::Linked(addresses) => {
                self.check_target()?;
                let Some(addresses) = addresses.get(k) else {
                    return Err(self.error(format!("no linked kernels for program {k}")));
                };
                if addresses.len() != program.kernels.len() {
                    return Err(self.error(format!(
                        "program {k} has {} kernels but {} are linked",
                        program.kernels.len(),
                        addresses.len()
                    )));
                }
                // SAFETY: `CodeSource::Linked`'s contract: these are the functions an
                // explainer object file emitted from this very artifact's kernel descriptions.
                Ok(unsafe { Code::linked(addresses.clone()) })
            }
            CodeSource::Recompile => Code::jit(&program.kernels),
            CodeSource::Stored => {
                self.check_target()?;
                let functions = convert::code(p, payload)
                    .map_err(|e| self.error(format!("program {k}: {e}")))?;
                if functions.len() != program.kernels.len() {
                    return Err(self.error(format!(
                        "program {k} stores code for {} of its {} kernels",
                        functions.len(),
                        program.kernels.len()
                    )));
                }
                let functions: Vec<(&[u8], &[super::code::Patch])> = functions
                    .iter()
                    .map(|(bytes, patches)| (*bytes, patches.as_slice()))
                    .collect();
                Code::map(&functions)
            }
        }
        .map_err(|e| self.error(format!("program {k}: {e}")))?;
        Ok((program, code))
    }

    /// The stored code must have been made for this kind of CPU and use only features it has.
    fn check_target(&self) -> Result<()> {
        let (triple, features) = self.target();
        let (host, have) = super::jit::host_target().map_err(|e| self.error(e))?;
        if triple != host {
            return Err(self.error(format!(
                "its code was compiled for {triple}, this machine is {host}; load it with recompilation (--recompile) or compile the model here"
            )));
        }
        let missing: Vec<&str> = features
            .iter()
            .filter(|f| !have.contains(f))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(self.error(format!(
                "its code assumes CPU features this machine lacks ({}); load it with recompilation (--recompile) or compile the model here",
                missing.join(", ")
            )));
        }
        Ok(())
    }
}

/// What `lrpc inspect` shows of an artifact.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub file: String,
    pub bytes: usize,
    pub format_version: u32,
    pub lrpc_version: String,
    pub source_file: String,
    pub source_sha256: String,
    pub source_bytes: u64,
    pub method: String,
    pub parameters: Vec<(String, String)>,
    pub overrides: Vec<String>,
    pub input_name: String,
    pub input_shape: Vec<usize>,
    pub logits_shape: Vec<usize>,
    /// The relevance's shape when it is not the input's (token ids: the embedding vectors').
    pub relevance_shape: Option<Vec<usize>>,
    pub classes: usize,
    pub outputs: Vec<String>,
    pub layers_reported: bool,
    pub target: String,
    pub cpu_features: Vec<String>,
    /// Per program: (steps, kernels, arena bytes, threads it was planned for).
    pub programs: Vec<(usize, usize, u64, u64)>,
    pub sections: Vec<(String, u64)>,
    pub rules: Vec<(String, String, String)>,
}

impl Summary {
    /// The text `lrpc inspect` prints.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let mb = |b: f64| b / 1e6;
        t += &format!(
            "artifact {} ({:.1} MB, format {}, written by lrpc {})\n",
            self.file,
            mb(self.bytes as f64),
            self.format_version,
            self.lrpc_version
        );
        t += &format!(
            "source: {} ({} bytes, sha256 {})\n",
            self.source_file, self.source_bytes, self.source_sha256
        );
        let params: Vec<String> = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        t += &format!("method: {} ({})\n", self.method, params.join(", "));
        for o in &self.overrides {
            t += &format!("  rule override: {o}\n");
        }
        t += &format!(
            "input: {} {:?}; logits {:?} ({} classes); model outputs: {}\n",
            self.input_name,
            self.input_shape,
            self.logits_shape,
            self.classes,
            self.outputs.join(", ")
        );
        if let Some(r) = &self.relevance_shape {
            t += &format!("relevance: at the embedding vectors {r:?}\n");
        }
        t += &format!("code: {} ({})\n", self.target, self.cpu_features.join(" "));
        for (i, (steps, kernels, arena, threads)) in self.programs.iter().enumerate() {
            t += &format!(
                "program {i}: {steps} steps, {kernels} kernels, arena {:.1} MB (planned for {threads} threads)\n",
                mb(*arena as f64)
            );
        }
        t += "sections:\n";
        for (name, bytes) in &self.sections {
            t += &format!("  {name:<28} {:>12.3} MB\n", mb(*bytes as f64));
        }
        t += &format!(
            "rules ({} nodes{}):\n",
            self.rules.len(),
            if self.layers_reported {
                ", per-layer totals reported"
            } else {
                ""
            }
        );
        for (node, op, rule) in &self.rules {
            t += &format!("  {node:<40} {op:<20} {rule}\n");
        }
        t
    }
}

impl Artifact {
    /// What the artifact holds, for display.
    pub fn summary(&self) -> Result<Summary> {
        let spec = self.spec()?;
        let m = self.method()?;
        let source = self.source();
        let bound = |(v, per): &(Vec<f32>, bool)| {
            let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            if *per {
                format!("[{}]", items.join(","))
            } else {
                items.join(",")
            }
        };
        let mut parameters = vec![
            ("epsilon".to_string(), format!("{:e}", m.epsilon)),
            ("gamma".to_string(), m.gamma.to_string()),
            ("low".to_string(), bound(&m.low)),
            ("high".to_string(), bound(&m.high)),
            ("alpha".to_string(), m.alpha.to_string()),
            ("beta".to_string(), m.beta.to_string()),
            ("bias_factor".to_string(), m.bias_factor.to_string()),
        ];
        if m.samples > 0 {
            parameters.push(("samples".into(), m.samples.to_string()));
            parameters.push(("noise_level".into(), m.noise_level.to_string()));
        }
        if m.steps > 0 {
            parameters.push(("steps".into(), m.steps.to_string()));
        }
        let (target, cpu_features) = self.target();
        Ok(Summary {
            file: self.path.display().to_string(),
            bytes: self.file_bytes(),
            format_version: FORMAT_VERSION,
            lrpc_version: self.lrpc_version().to_string(),
            source_file: source.file,
            source_sha256: source.sha256.iter().map(|b| format!("{b:02x}")).collect(),
            source_bytes: source.size,
            method: m.name.clone(),
            parameters,
            overrides: m
                .overrides
                .iter()
                .map(|(p, _, text)| format!("{p}={text}"))
                .collect(),
            classes: spec.classes(),
            input_name: spec.input().name.clone(),
            input_shape: spec.input().shape.clone(),
            relevance_shape: spec
                .relevance_at_embedding()
                .then(|| spec.relevance_shape.clone()),
            logits_shape: spec.logits_shape,
            outputs: spec.outputs,
            layers_reported: !spec.layers.is_empty(),
            target,
            cpu_features,
            programs: self
                .header
                .programs
                .iter()
                .map(|p| (p.steps.len(), p.kernels.len(), p.arena * 4, p.threads))
                .collect(),
            sections: self.sections(),
            rules: self
                .rules()
                .into_iter()
                .map(|r| (r.node, r.op, r.rule))
                .collect(),
        })
    }
}

/// Sections must tile the payload exactly, each matching its checksum.
fn check_sections(sections: &[proto::Section], payload: &[u8]) -> std::result::Result<(), String> {
    let mut at = 0u64;
    for s in sections {
        if s.offset != at {
            return Err(format!(
                "section '{}' starts at {} where {at} was expected",
                s.name, s.offset
            ));
        }
        at = s
            .offset
            .checked_add(s.length)
            .ok_or_else(|| format!("section '{}' overflows", s.name))?;
    }
    if at != payload.len() as u64 {
        return Err(format!(
            "the sections cover {at} bytes of a payload of {} (truncated or extended file)",
            payload.len()
        ));
    }
    let bad = sections.par_iter().find_first(|s| {
        let range = s.offset as usize..(s.offset + s.length) as usize;
        crc32fast::hash(&payload[range]) != s.crc32
    });
    match bad {
        Some(s) => Err(format!(
            "section '{}' is corrupted (checksum mismatch)",
            s.name
        )),
        None => Ok(()),
    }
}

/// What a caller needs of the machine code of a program it saves.
pub type ProgramCode<'a> = Option<&'a [MachineCode]>;

/// Rewriting artifacts with valid checksums, for tests and the fuzzer: so a changed header or
/// payload reaches the decoder and the program checks instead of stopping at a checksum.
#[doc(hidden)]
pub mod testing {
    use prost::Message;

    use super::{PAYLOAD_ALIGN, PREFIX, proto};

    /// Decodes the header, lets `edit` change it, recomputes every section's checksum over the
    /// payload, and re-encodes the file. `None` if the header does not decode.
    pub fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut Header)) -> Option<Vec<u8>> {
        if bytes.len() < PREFIX {
            return None;
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[16..24]);
        let header_len = usize::try_from(u64::from_le_bytes(len)).ok()?;
        let end = PREFIX
            .checked_add(header_len)
            .filter(|&e| e <= bytes.len())?;
        let mut header = Header(proto::Artifact::decode(&bytes[PREFIX..end]).ok()?);
        let payload = bytes
            .get(end.next_multiple_of(PAYLOAD_ALIGN)..)
            .unwrap_or(&[]);
        edit(&mut header);
        for s in &mut header.0.sections {
            let (a, b) = (
                s.offset as usize,
                s.offset.saturating_add(s.length) as usize,
            );
            if let Some(range) = payload.get(a..b) {
                s.crc32 = crc32fast::hash(range);
            }
        }
        let h = header.0.encode_to_vec();
        let mut out = bytes[..PREFIX].to_vec();
        out[16..24].copy_from_slice(&(h.len() as u64).to_le_bytes());
        out[24..28].copy_from_slice(&crc32fast::hash(&h).to_le_bytes());
        let crc = crc32fast::hash(&out[..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&h);
        out.resize(out.len().next_multiple_of(PAYLOAD_ALIGN), 0);
        out.extend_from_slice(payload);
        Some(out)
    }

    /// A decoded header, opaque outside the artifact module but for the edits tests need.
    pub struct Header(proto::Artifact);

    impl Header {
        /// Sets the target the stored code claims to assume.
        pub fn set_target(&mut self, triple: &str, features: &[&str]) {
            self.0.target = Some(proto::Target {
                triple: triple.into(),
                features: features.iter().map(|f| f.to_string()).collect(),
            });
        }

        /// Sets the writer's lrpc version.
        pub fn set_lrpc_version(&mut self, v: &str) {
            self.0.lrpc_version = v.into();
        }

        /// The header's protobuf encoding (for fuzzing it).
        pub fn encoded(&self) -> Vec<u8> {
            self.0.encode_to_vec()
        }

        /// Replaces the header by `bytes` if they decode.
        pub fn replace(&mut self, bytes: &[u8]) -> bool {
            match proto::Artifact::decode(bytes) {
                Ok(h) => {
                    self.0 = h;
                    true
                }
                Err(_) => false,
            }
        }
    }

    /// Sets the format version in the prefix (and its checksum).
    pub fn set_format_version(bytes: &mut [u8], version: u32) {
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    }
}
