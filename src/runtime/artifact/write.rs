//! Writing an artifact: the payload is laid out first (code, tables, constants; shared
//! constants once), then the header that points into it; everything goes to a temporary file
//! beside the target, renamed into place once complete.

use std::path::Path;

use prost::Message;

use super::convert::{self, Payload};
use super::{
    CODE_ALIGN, DATA_ALIGN, FORMAT_VERSION, MAGIC, MethodInfo, PAYLOAD_ALIGN, PREFIX, RuleInfo,
    SECTION_BYTES, SourceInfo, proto,
};
use crate::error::{Error, Result};
use crate::io::write_atomically;
use crate::runtime::code::MachineCode;
use crate::runtime::executable::Executable;
use crate::runtime::explainer::Spec;

/// What an artifact holds.
pub struct Parts<'a> {
    pub source: SourceInfo,
    pub method: MethodInfo,
    pub spec: &'a Spec,
    /// The explain program, then the batched one if any.
    pub programs: Vec<&'a Executable>,
    pub rules: Vec<RuleInfo>,
    /// Whether to store each kernel's machine code (else loaders recompile the kernels).
    pub code: bool,
}

/// An encoded artifact: the fixed prefix, the header, the padding, and the payload's chunks.
struct Encoded<'a> {
    prefix: [u8; PREFIX],
    header: Vec<u8>,
    pad: usize,
    chunks: Vec<std::borrow::Cow<'a, [u8]>>,
}

fn encode<'a>(parts: &Parts<'a>) -> std::result::Result<Encoded<'a>, String> {
    let mut payload = Payload::default();
    let mut programs = Vec::with_capacity(parts.programs.len());
    for exe in &parts.programs {
        let code: Option<&[MachineCode]> = if parts.code {
            Some(
                exe.code()
                    .machine_code()
                    .ok_or("the executable's machine code is not available to store")?,
            )
        } else {
            None
        };
        programs.push(convert::program_proto(exe, code, &mut payload));
    }
    let (host_triple, features) = crate::runtime::jit::host_target()?;
    let (sections, chunks) = payload.layout();
    let header = proto::Artifact {
        lrpc_version: env!("CARGO_PKG_VERSION").to_string(),
        source: Some(convert::source_proto(&parts.source)),
        method: Some(convert::method_proto(&parts.method)),
        target: Some(proto::Target {
            triple: host_triple,
            features,
        }),
        spec: Some(convert::spec_proto(parts.spec)),
        programs,
        rules: parts
            .rules
            .iter()
            .map(|r| proto::Rule {
                node: r.node.clone(),
                op: r.op.clone(),
                rule: r.rule.clone(),
            })
            .collect(),
        sections,
    };
    let header = header.encode_to_vec();
    let mut prefix = [0u8; PREFIX];
    prefix[..8].copy_from_slice(&MAGIC);
    prefix[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    prefix[16..24].copy_from_slice(&(header.len() as u64).to_le_bytes());
    prefix[24..28].copy_from_slice(&crc32fast::hash(&header).to_le_bytes());
    let crc = crc32fast::hash(&prefix[..28]);
    prefix[28..32].copy_from_slice(&crc.to_le_bytes());
    let pad = (PREFIX + header.len()).next_multiple_of(PAYLOAD_ALIGN) - PREFIX - header.len();
    Ok(Encoded {
        prefix,
        header,
        pad,
        chunks,
    })
}

/// Writes `parts` to `path` (atomically: a temporary file renamed into place).
pub fn write(path: &Path, parts: &Parts) -> Result<()> {
    let e = encode(parts).map_err(|reason| Error::Graph {
        file: path.display().to_string(),
        reason,
    })?;
    write_atomically(path, |w| {
        w.write_all(&e.prefix)?;
        w.write_all(&e.header)?;
        w.write_all(&vec![0u8; e.pad])?;
        for chunk in &e.chunks {
            w.write_all(chunk)?;
        }
        Ok(())
    })
}

/// The artifact's bytes in memory (what an object file embeds).
pub fn to_bytes(parts: &Parts) -> std::result::Result<Vec<u8>, String> {
    let e = encode(parts)?;
    let mut v = Vec::new();
    v.extend_from_slice(&e.prefix);
    v.extend_from_slice(&e.header);
    v.resize(v.len() + e.pad, 0);
    for chunk in &e.chunks {
        v.extend_from_slice(chunk);
    }
    Ok(v)
}

/// Alignments and section size, for the payload builder.
pub(super) const ALIGN: (usize, usize, usize) = (CODE_ALIGN, DATA_ALIGN, SECTION_BYTES);
