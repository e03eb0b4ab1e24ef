//! Typed access to a node's attributes. Every reader checks the attribute's declared type and
//! returns a reason naming the attribute; the import driver adds the file, node and op.

use std::collections::HashMap;

use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, NodeProto, TensorProto};

/// The attributes of one node, by name.
pub struct Attrs<'a> {
    by_name: HashMap<&'a str, &'a AttributeProto>,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Result<Self, String> {
        let mut by_name = HashMap::new();
        for a in &node.attribute {
            if by_name.insert(a.name.as_str(), a).is_some() {
                return Err(format!("attribute '{}' is given twice", a.name));
            }
        }
        Ok(Attrs { by_name })
    }

    /// The attribute's type: the declared one, or for writers that leave `type` unset (IR < 2)
    /// the one whose field holds a value.
    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        let Some(&a) = self.by_name.get(name) else {
            return Ok(None);
        };
        let declared = AttributeType::try_from(a.r#type).unwrap_or(AttributeType::Undefined);
        let actual = if declared == AttributeType::Undefined {
            guess_type(a)
        } else {
            declared
        };
        if actual != want {
            return Err(format!(
                "attribute '{name}' should be {}, found {}",
                want.as_str_name(),
                actual.as_str_name()
            ));
        }
        Ok(Some(a))
    }

    /// A graph attribute (If's branches).
    pub fn graph(&self, name: &str) -> Result<Option<&'a super::proto::GraphProto>, String> {
        Ok(self
            .typed(name, AttributeType::Graph)?
            .and_then(|a| a.g.as_ref()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// An int attribute that must be 0 or 1.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(format!("attribute '{name}' must be 0 or 1, got {v}")),
        }
    }

    pub fn float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    /// An ints attribute whose values must all be >= `min` (sizes, strides, pads), as usize.
    pub fn sizes(&self, name: &str, min: i64) -> Result<Option<Vec<usize>>, String> {
        let Some(v) = self.ints(name)? else {
            return Ok(None);
        };
        if let Some(bad) = v.iter().find(|&&x| x < min) {
            let rule = if min == 0 {
                "must not be negative"
            } else {
                "must be positive"
            };
            return Err(format!("attribute '{name}' {rule}, got {bad} in {v:?}"));
        }
        Ok(Some(v.into_iter().map(|x| x as usize).collect()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        self.typed(name, AttributeType::String)?
            .map(|a| {
                String::from_utf8(a.s.clone())
                    .map_err(|_| format!("attribute '{name}' is not valid UTF-8"))
            })
            .transpose()
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        self.typed(name, AttributeType::Strings)?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.clone())
                            .map_err(|_| format!("attribute '{name}' is not valid UTF-8"))
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, String> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Names of all attributes present, sorted (for "unknown attribute" messages).
    pub fn names(&self) -> Vec<&'a str> {
        let mut v: Vec<&str> = self.by_name.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

fn guess_type(a: &AttributeProto) -> AttributeType {
    if a.t.is_some() {
        AttributeType::Tensor
    } else if a.g.is_some() {
        AttributeType::Graph
    } else if !a.floats.is_empty() {
        AttributeType::Floats
    } else if !a.ints.is_empty() {
        AttributeType::Ints
    } else if !a.strings.is_empty() {
        AttributeType::Strings
    } else if !a.s.is_empty() {
        AttributeType::String
    } else if a.f != 0.0 {
        AttributeType::Float
    } else {
        AttributeType::Int
    }
}
