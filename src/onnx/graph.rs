//! The import phases: ModelProto -> IR graph, with every structural check on the way.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use prost::Message;

use super::ImportOptions;
use super::attrs::Attrs;
use super::ops::{self, ImportError, NodeCtx, Source};
use super::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto, tensor_proto::DataType};
use super::tensor::to_tensor;
use crate::error::{Error, Result};
use crate::ir::{DType, Fact, Graph, NodeIndex, Op, Output, Tensor};
use crate::passes::Pass;

/// A declared input dimension.
#[derive(Clone, Debug)]
enum Dim {
    Fixed(usize),
    Named(String),
    Unnamed,
}

/// Everything needed while converting one model.
struct Importer<'a> {
    file: &'a str,
    dir: Option<&'a Path>,
    options: &'a ImportOptions,
    graph: Graph,
    /// Initializers and `Constant` outputs, by name.
    consts: HashMap<String, Arc<Tensor>>,
    /// Const nodes already made for initializers.
    const_nodes: HashMap<String, NodeIndex>,
    /// Value name -> the IR node producing it.
    values: HashMap<String, NodeIndex>,
    /// Names of node outputs past the first, which lrpc does not support: name -> (node, op, position).
    secondary: HashMap<String, (String, String, usize)>,
    /// How deep in If branches the import is.
    depth: usize,
    /// The ONNX element type of initializers, `Constant` outputs and graph inputs, by name
    /// (the IR holds every integer type as i64; quantisation needs the original's range).
    types: HashMap<String, i32>,
    /// The op types reading each value (a graph output counts as "graph output").
    uses: HashMap<String, Vec<String>>,
}

/// Records which op types read each value of `g`, and its outputs as "graph output".
fn record_uses(uses: &mut HashMap<String, Vec<String>>, g: &GraphProto) {
    for n in &g.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            uses.entry(i.clone()).or_default().push(n.op_type.clone());
        }
    }
    for o in &g.output {
        uses.entry(o.name.clone())
            .or_default()
            .push("graph output".into());
    }
}

/// If branches nested deeper than this are refused (a hostile model could nest without end).
const MAX_IF_DEPTH: usize = 32;

pub fn import(
    bytes: bytes::Bytes,
    file: &str,
    dir: Option<&Path>,
    options: &ImportOptions,
) -> Result<Graph> {
    let model = decode(bytes, file)?;
    let opset = default_opset(&model, file)?;
    let Some(g) = model.graph.as_ref() else {
        return Err(Error::Decode {
            file: file.into(),
            reason: "the model has no graph".into(),
        });
    };
    let mut imp = Importer {
        file,
        dir,
        options,
        graph: Graph::new(file, opset),
        consts: HashMap::new(),
        const_nodes: HashMap::new(),
        values: HashMap::new(),
        secondary: HashMap::new(),
        depth: 0,
        types: HashMap::new(),
        uses: HashMap::new(),
    };
    record_uses(&mut imp.uses, g);
    imp.graph.max_elements = options.max_elements;
    imp.initializers(g)?;
    imp.bind_constants(g)?;
    imp.inputs(g)?;
    let order = node_order(g, file)?;
    for i in order {
        imp.node(&g.node[i], i)?;
    }
    imp.outputs(g)?;
    Ok(imp.graph)
}

fn decode(bytes: bytes::Bytes, file: &str) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes).map_err(|e| Error::Decode {
        file: file.into(),
        reason: e.to_string(),
    })?;
    if model.graph.is_none() && model.opset_import.is_empty() {
        return Err(Error::Decode {
            file: file.into(),
            reason: "no graph and no opset: this is not an ONNX model".into(),
        });
    }
    Ok(model)
}

fn default_opset(model: &ModelProto, file: &str) -> Result<i64> {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| Error::Decode {
            file: file.into(),
            reason: "no opset_import entry for the default ONNX domain".into(),
        })
}

/// ONNX requires nodes in topological order; exporters mostly comply, but sorting here costs little
/// and turns a cycle into an error that names the nodes on it.
fn node_order(g: &GraphProto, file: &str) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for out in n.output.iter().filter(|o| !o.is_empty()) {
            if producer.insert(out.as_str(), i).is_some() {
                return Err(Error::Graph {
                    file: file.into(),
                    reason: format!("value '{out}' is produced by more than one node"),
                });
            }
        }
    }
    let mut indegree = vec![0usize; g.node.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        let deps: BTreeSet<usize> = n
            .input
            .iter()
            .filter_map(|x| producer.get(x.as_str()).copied())
            .collect();
        indegree[i] = deps.len();
        for d in deps {
            users[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..g.node.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(g.node.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() < g.node.len() {
        let stuck: Vec<String> = (0..g.node.len())
            .filter(|&i| indegree[i] > 0)
            .map(|i| format!("'{}' ({})", node_name(&g.node[i], i), g.node[i].op_type))
            .collect();
        return Err(Error::Graph {
            file: file.into(),
            reason: format!("the graph has a cycle through nodes {}", stuck.join(", ")),
        });
    }
    Ok(order)
}

/// The node's name, or its first output's, or `{op}_{index}`.
fn node_name(n: &NodeProto, index: usize) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else if let Some(o) = n.output.first().filter(|o| !o.is_empty()) {
        o.clone()
    } else {
        format!("{}_{index}", n.op_type)
    }
}

impl Importer<'_> {
    fn graph_error(&self, reason: String) -> Error {
        Error::Graph {
            file: self.file.into(),
            reason,
        }
    }

    fn initializers(&mut self, g: &GraphProto) -> Result<()> {
        for t in &g.initializer {
            if t.name.is_empty() {
                return Err(self.graph_error("an initializer has no name".into()));
            }
            self.check_dims(&t.dims, &format!("initializer '{}'", t.name))?;
            let tensor = to_tensor(t, self.dir)
                .map_err(|r| self.graph_error(format!("initializer '{}': {r}", t.name)))?;
            self.types.insert(t.name.clone(), t.data_type);
            if self
                .consts
                .insert(t.name.clone(), Arc::new(tensor))
                .is_some()
            {
                return Err(self.graph_error(format!("initializer '{}' is defined twice", t.name)));
            }
        }
        Ok(())
    }

    /// Inputs the caller fixed (`ImportOptions::constants`) become constants: their data must
    /// match the declared type and the declared fixed sizes.
    fn bind_constants(&mut self, g: &GraphProto) -> Result<()> {
        for (name, t) in &self.options.constants {
            let Some(v) = g.input.iter().find(|v| &v.name == name) else {
                return Err(self.graph_error(format!("--const {name}: not a graph input")));
            };
            let (dtype, dims) = self.input_type(v)?;
            let fits = dims.len() == t.shape().len()
                && dims.iter().zip(t.shape()).all(|(d, &n)| match d {
                    Dim::Fixed(f) => *f == n,
                    _ => true,
                });
            if dtype != t.dtype() || !fits {
                return Err(self.graph_error(format!(
                    "--const {name}: the data is {} {:?}, the input is declared {dtype} of rank {}",
                    t.dtype(),
                    t.shape(),
                    dims.len()
                )));
            }
            self.consts.insert(name.clone(), Arc::new(t.clone()));
        }
        Ok(())
    }

    /// Refuses negative or giant declared dimensions before anything is allocated for them.
    fn check_dims(&self, dims: &[i64], what: &str) -> Result<()> {
        let mut n: usize = 1;
        for &d in dims {
            let d = usize::try_from(d).map_err(|_| {
                self.graph_error(format!("{what} has a negative dimension in {dims:?}"))
            })?;
            n = n.saturating_mul(d);
        }
        if n > self.options.max_elements {
            return Err(self.graph_error(format!(
                "{what} declares {dims:?} ({n} elements), over the limit of {}",
                self.options.max_elements
            )));
        }
        Ok(())
    }

    /// Every graph input that is not an initializer becomes an Input node, in ONNX order. The
    /// explained one is `--explain-input`, else the first float input, else the first integer
    /// input that feeds a Gather (token ids into an embedding), else the first.
    fn inputs(&mut self, g: &GraphProto) -> Result<()> {
        let real: Vec<&ValueInfoProto> = g
            .input
            .iter()
            .filter(|v| !self.consts.contains_key(&v.name))
            .collect();
        if real.is_empty() {
            return Err(self.graph_error("the graph has no input".into()));
        }
        let mut kinds = Vec::with_capacity(real.len());
        for v in &real {
            kinds.push(self.input_type(v)?);
            if let Some(super::proto::type_proto::Value::TensorType(t)) =
                v.r#type.as_ref().and_then(|t| t.value.as_ref())
            {
                self.types.insert(v.name.clone(), t.elem_type);
            }
        }
        let explained = match &self.options.explain_input {
            Some(name) => real.iter().position(|v| &v.name == name).ok_or_else(|| {
                let names: Vec<&str> = real.iter().map(|v| v.name.as_str()).collect();
                self.graph_error(format!(
                    "--explain-input '{name}' is not a graph input (inputs: {})",
                    names.join(", ")
                ))
            })?,
            // Token ids are what a text model explains, even beside a float mask; a model
            // without a lookup explains its first float input.
            None => real
                .iter()
                .zip(&kinds)
                .position(|(v, (d, _))| *d != DType::F32 && feeds_lookup(g, &v.name))
                .or_else(|| kinds.iter().position(|(d, _)| *d == DType::F32))
                .unwrap_or(0),
        };
        // Sizes of named symbolic dimensions: --dim first, then whatever the data given for
        // any input says, so inputs sharing a name ("batch", "seq") agree.
        let mut bound: HashMap<String, usize> = self
            .options
            .dims
            .iter()
            .map(|(k, &v)| (k.clone(), v))
            .collect();
        let hints: Vec<Option<(&[usize], usize)>> = real
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let hint = if i == explained {
                    self.options.input_shape.as_deref()
                } else {
                    self.options.input_shapes.get(&v.name).map(Vec::as_slice)
                };
                let rank = kinds[i].1.len();
                hint.and_then(|h| match h.len() {
                    n if n == rank => Some((h, 0)),
                    n if n + 1 == rank => Some((h, 1)),
                    _ => None,
                })
            })
            .collect();
        for (i, (_, dims)) in kinds.iter().enumerate() {
            for (axis, d) in dims.iter().enumerate() {
                if let (Dim::Named(name), Some((h, skip))) = (d, hints[i])
                    && let Some(a) = axis.checked_sub(skip)
                {
                    bound.entry(name.clone()).or_insert(h[a]);
                }
            }
        }
        for (i, v) in real.iter().enumerate() {
            let (dtype, dims) = &kinds[i];
            let shape = self.resolve(v, dims, hints[i], &bound)?;
            let n = self.graph.add(v.name.clone(), Op::Input, &[]);
            self.graph.node_mut(n).fact = Some(Fact::new(*dtype, shape));
            self.graph.inputs.push(n);
            self.values.insert(v.name.clone(), n);
        }
        self.graph.explained = explained;
        Ok(())
    }

    /// An input's element type as the IR holds it (every integer type and bool as i64, every
    /// float type as f32) and its declared dimensions.
    fn input_type(&self, v: &ValueInfoProto) -> Result<(DType, Vec<Dim>)> {
        use super::proto::tensor_shape_proto::dimension::Value as D;
        use super::proto::type_proto::Value;
        let what = format!("input '{}'", v.name);
        let Some(Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(self.graph_error(format!("{what} is not a tensor")));
        };
        let dtype = DataType::try_from(t.elem_type).unwrap_or(DataType::Undefined);
        let dtype = match dtype {
            DataType::Float | DataType::Float16 | DataType::Double | DataType::Bfloat16 => {
                DType::F32
            }
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Uint8
            | DataType::Uint16
            | DataType::Uint32
            | DataType::Uint64
            | DataType::Bool => DType::I64,
            other => {
                return Err(self.graph_error(format!(
                    "{what} has element type {}; lrpc takes float, integer and bool inputs",
                    other.as_str_name()
                )));
            }
        };
        let Some(shape) = &t.shape else {
            return Err(self.graph_error(format!(
                "{what} has no shape; lrpc needs its rank (give the sizes of symbolic dimensions with --dim)"
            )));
        };
        let mut dims = Vec::with_capacity(shape.dim.len());
        for (axis, d) in shape.dim.iter().enumerate() {
            dims.push(match &d.value {
                Some(D::DimValue(0)) => {
                    return Err(
                        self.graph_error(format!("{what} has a zero dimension at axis {axis}"))
                    );
                }
                Some(D::DimValue(v)) if *v > 0 => Dim::Fixed(*v as usize),
                // -1 and other negative sizes are how some exporters write "dynamic".
                Some(D::DimValue(_)) | None => Dim::Unnamed,
                // paddle2onnx writes "?" for every unknown size: a placeholder, not a name that
                // ties two axes together.
                Some(D::DimParam(p)) if p.is_empty() || p == "?" => Dim::Unnamed,
                Some(D::DimParam(p)) => Dim::Named(p.clone()),
            });
        }
        Ok((dtype, dims))
    }

    /// The static shape of input `v`: fixed sizes as declared; a symbolic one from --dim (by
    /// name), --batch (axis 0), the data given for any input (by name) or for this one (by
    /// position), else 1 for axis 0; anything else is an error asking for --dim.
    fn resolve(
        &self,
        v: &ValueInfoProto,
        dims: &[Dim],
        hint: Option<(&[usize], usize)>,
        bound: &HashMap<String, usize>,
    ) -> Result<Vec<usize>> {
        let what = format!("input '{}'", v.name);
        let mut shape = Vec::with_capacity(dims.len());
        for (axis, d) in dims.iter().enumerate() {
            let hinted = hint.and_then(|(h, skip)| axis.checked_sub(skip).map(|a| h[a]));
            let size = match d {
                Dim::Fixed(s) => *s,
                Dim::Named(name) if self.options.dims.contains_key(name) => bound[name],
                _ if axis == 0 && self.options.batch.is_some() => self.options.batch.unwrap_or(1),
                Dim::Named(name) if bound.contains_key(name) => bound[name],
                _ if hinted.is_some() => hinted.unwrap_or(1),
                _ if axis == 0 => 1,
                Dim::Named(name) => {
                    return Err(self.graph_error(format!(
                        "{what} has a symbolic dimension '{name}' at axis {axis}; give its size (--dim {name}=SIZE)"
                    )));
                }
                Dim::Unnamed => {
                    return Err(self.graph_error(format!(
                        "{what} has an unnamed dynamic dimension at axis {axis}; give its size with the input data"
                    )));
                }
            };
            if size == 0 {
                return Err(self.graph_error(format!("{what} has a zero dimension at axis {axis}")));
            }
            shape.push(size);
        }
        let as_i64: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.check_dims(&as_i64, &what)?;
        Ok(shape)
    }

    /// The IR node for value `name` read by node `reader`.
    fn value(&mut self, name: &str, reader: &str, op: &str) -> Result<NodeIndex> {
        if let Some(&n) = self.values.get(name) {
            return Ok(n);
        }
        if let Some(&n) = self.const_nodes.get(name) {
            return Ok(n);
        }
        if let Some(t) = self.consts.get(name) {
            let n = self.graph.add(name, Op::Const(t.clone()), &[]);
            self.const_nodes.insert(name.to_string(), n);
            return Ok(n);
        }
        if let Some((node, producer_op, pos)) = self.secondary.get(name) {
            return Err(Error::Import {
                file: self.file.into(),
                node: reader.into(),
                op: op.into(),
                reason: format!(
                    "reads '{name}', output {pos} of node '{node}' ({producer_op}), which lrpc does not compute"
                ),
            });
        }
        Err(Error::Import {
            file: self.file.into(),
            node: reader.into(),
            op: op.into(),
            reason: format!("reads '{name}', which no node, initializer or graph input provides"),
        })
    }

    fn node(&mut self, n: &NodeProto, index: usize) -> Result<()> {
        let name = node_name(n, index);
        let op_type = n.op_type.as_str();
        let import_error = |reason: String| Error::Import {
            file: self.file.into(),
            node: name.clone(),
            op: op_type.into(),
            reason,
        };
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(Error::UnsupportedOp {
                file: self.file.into(),
                node: name,
                op: op_type.into(),
                domain: n.domain.clone(),
                opset: self.graph.opset,
            });
        }
        // The first output used (a GRU may leave Y unnamed and give only Y_h).
        let Some(first) = n.output.iter().find(|o| !o.is_empty()) else {
            return Err(import_error("has no output".into()));
        };
        let attrs = Attrs::new(n).map_err(import_error)?;
        if op_type == "If" {
            return self.inline_if(n, &name, &attrs);
        }
        if op_type == "Constant"
            && let Ok(Some(t)) = attrs.tensor("value")
        {
            self.types.insert(first.clone(), t.data_type);
        }
        // A Cast says its result's type (a zero point computed in a quantisation subgraph).
        if op_type == "Cast"
            && let Ok(Some(to)) = attrs.int("to")
        {
            self.types.insert(first.clone(), to as i32);
        }
        if ops::FOLDED_INPUTS.contains(&op_type) {
            self.fold_inputs(n, &name, op_type)?;
        }
        let input_shapes = if ops::NEEDS_SHAPE.contains(&op_type) {
            self.shapes_of(n, &name, op_type)?
        } else {
            Vec::new()
        };
        let ctx = NodeCtx {
            node: n,
            opset: self.graph.opset,
            attrs,
            consts: &self.consts,
            input_shapes,
            types: &self.types,
            uses: &self.uses,
        };
        let imported = match ops::import(&ctx) {
            Ok(i) => i,
            Err(ImportError::Unsupported) => {
                return Err(Error::UnsupportedOp {
                    file: self.file.into(),
                    node: name,
                    op: op_type.into(),
                    domain: "ai.onnx".into(),
                    opset: self.graph.opset,
                });
            }
            Err(ImportError::Invalid(reason)) => return Err(import_error(reason)),
        };
        for &(pos, max) in &imported.limits {
            if let Some(input) = n.input.get(pos).filter(|i| !i.is_empty())
                && self
                    .graph
                    .inputs
                    .iter()
                    .any(|&g| self.graph.node(g).name == *input)
            {
                let why = format!("input {pos} of node '{name}' ({op_type}) takes at most {max}");
                self.graph.input_limits.insert(input.clone(), (max, why));
            }
        }
        for note in &imported.notes {
            self.graph
                .notes
                .push(format!("node '{name}' ({op_type}): {note}"));
        }
        let mut made: Vec<NodeIndex> = Vec::with_capacity(imported.nodes.len());
        for spec in imported.nodes {
            let mut inputs = Vec::with_capacity(spec.inputs.len());
            for src in spec.inputs {
                match src {
                    Source::Input(i) => {
                        let value = n.input.get(i).filter(|v| !v.is_empty()).ok_or_else(|| {
                            import_error(format!("input {i} is required but absent"))
                        })?;
                        inputs.push(self.value(value, &name, op_type)?);
                    }
                    Source::Const(role, t) => {
                        inputs.push(self.graph.add(format!("{name}.{role}"), Op::Const(t), &[]));
                    }
                    Source::Node(k) => inputs.push(*made.get(k).ok_or_else(|| {
                        import_error(format!("internal: an importer read its node {k} early"))
                    })?),
                }
            }
            let node_name = if spec.role.is_empty() {
                name.clone()
            } else {
                format!("{name}.{}", spec.role)
            };
            made.push(self.graph.add(node_name, spec.op, &inputs));
        }
        for (pos, out) in n.output.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
            match imported.outputs.get(pos).copied().flatten() {
                Some(k) => {
                    let ir = *made.get(k).ok_or_else(|| {
                        import_error(format!("internal: output {pos} names a missing node"))
                    })?;
                    if let Op::Const(t) = &self.graph.node(ir).op {
                        self.consts.insert(out.clone(), t.clone());
                    }
                    self.values.insert(out.clone(), ir);
                }
                None => {
                    self.secondary
                        .insert(out.clone(), (name.clone(), op_type.to_string(), pos));
                }
            }
        }
        if !self.values.contains_key(first) {
            return Err(import_error(
                "internal: the importer made no first output".into(),
            ));
        }
        Ok(())
    }

    /// Inputs past the first that are not constants in the file but fold to constants once
    /// shapes are known (pads, axes, split sizes computed from the input's shape): inferred
    /// over the graph so far and recorded as constants, so the importer can read them.
    fn fold_inputs(&mut self, n: &NodeProto, name: &str, op: &str) -> Result<()> {
        let pending: Vec<&String> = n
            .input
            .iter()
            .skip(1)
            .filter(|i| !i.is_empty() && !self.consts.contains_key(*i))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        crate::passes::InferFacts.run(&mut self.graph)?;
        for input in pending {
            let v = self.value(input, name, op)?;
            if let Some(t) = self.graph.fact(v).value.clone() {
                self.consts.insert(input.clone(), t);
            }
        }
        Ok(())
    }

    /// The shapes of node `n`'s inputs (absent ones empty), from shape inference over the graph
    /// imported so far (as for If conditions, the importer's one look-ahead to the passes).
    fn shapes_of(&mut self, n: &NodeProto, name: &str, op: &str) -> Result<Vec<Vec<usize>>> {
        let mut values = Vec::with_capacity(n.input.len());
        for input in &n.input {
            values.push(if input.is_empty() {
                None
            } else {
                Some(self.value(input, name, op)?)
            });
        }
        crate::passes::InferFacts.run(&mut self.graph)?;
        Ok(values
            .into_iter()
            .map(|v| v.map_or_else(Vec::new, |v| self.graph.fact(v).shape.clone()))
            .collect())
    }

    /// An If whose condition is known once shapes are: its condition is evaluated now (the
    /// graph imported so far, with its inputs' static shapes, is all it can depend on), and the
    /// taken branch's initializers and nodes are imported in its place, its outputs becoming
    /// the If's. The branch not taken is never imported (it may hold ops lrpc lacks).
    fn inline_if(&mut self, n: &NodeProto, name: &str, attrs: &Attrs) -> Result<()> {
        let import_error = |reason: String| Error::Import {
            file: self.file.into(),
            node: name.to_string(),
            op: "If".into(),
            reason,
        };
        if n.input.len() != 1 {
            return Err(import_error(format!(
                "takes 1 input (the condition), got {}",
                n.input.len()
            )));
        }
        self.depth += 1;
        if self.depth > MAX_IF_DEPTH {
            return Err(import_error(format!(
                "If branches nest more than {MAX_IF_DEPTH} deep"
            )));
        }
        let cond = self.value(&n.input[0], name, "If")?;
        // Shape inference with constant evaluation over what is imported so far: the one place
        // import looks ahead to the passes, because the branch to import depends on it.
        crate::passes::InferFacts.run(&mut self.graph)?;
        let value = self.graph.fact(cond).value.clone();
        let taken = match value.as_deref().map(|t| t.cast(DType::I64)) {
            Some(t) if t.len() == 1 => t.i64s().map(|v| v[0] != 0).unwrap_or(false),
            Some(t) => {
                return Err(import_error(format!(
                    "the condition has {} values; it must be one",
                    t.len()
                )));
            }
            None => {
                return Err(import_error(format!(
                    "the condition '{}' is computed at run time (from the input data); lrpc inlines If only when the condition is known once shapes are (a Shape comparison, a constant)",
                    n.input[0]
                )));
            }
        };
        let branch_name = if taken { "then_branch" } else { "else_branch" };
        let branch = attrs
            .graph(branch_name)
            .map_err(&import_error)?
            .ok_or_else(|| import_error(format!("has no {branch_name}")))?;
        self.initializers(branch)?;
        record_uses(&mut self.uses, branch);
        let order = node_order(branch, self.file)?;
        for (k, i) in order.into_iter().enumerate() {
            self.node(&branch.node[i], k)?;
        }
        let outs: Vec<&str> = n.output.iter().map(String::as_str).collect();
        if branch.output.len() != outs.len() {
            return Err(import_error(format!(
                "the {branch_name} has {} outputs for the If's {}",
                branch.output.len(),
                outs.len()
            )));
        }
        for (out, b) in outs.iter().zip(&branch.output) {
            if out.is_empty() {
                continue;
            }
            let node = self.value(&b.name, name, "If")?;
            if let Some(t) = self.consts.get(&b.name).cloned() {
                self.consts.insert(out.to_string(), t);
            }
            self.values.insert(out.to_string(), node);
        }
        self.depth -= 1;
        Ok(())
    }

    fn outputs(&mut self, g: &GraphProto) -> Result<()> {
        if g.output.is_empty() {
            return Err(self.graph_error("the graph has no output".into()));
        }
        let mut seen = HashSet::new();
        for o in &g.output {
            if !seen.insert(o.name.as_str()) {
                return Err(self.graph_error(format!("graph output '{}' is listed twice", o.name)));
            }
            let node = match self.values.get(&o.name) {
                Some(&n) => n,
                None if self.consts.contains_key(&o.name) => {
                    self.value(&o.name, &o.name, "output")?
                }
                None => {
                    let reason = match self.secondary.get(&o.name) {
                        Some((node, op, pos)) => format!(
                            "graph output '{}' is output {pos} of node '{node}' ({op}), which lrpc does not compute",
                            o.name
                        ),
                        None => format!("graph output '{}' is not produced by any node", o.name),
                    };
                    return Err(self.graph_error(reason));
                }
            };
            self.graph.outputs.push(Output {
                name: o.name.clone(),
                node,
                logits: None,
            });
        }
        Ok(())
    }
}

/// Whether `name` is the index input of a Gather, directly or through Casts (exporters cast
/// int32 ids to int64 before the lookup).
fn feeds_lookup(g: &super::proto::GraphProto, name: &str) -> bool {
    let mut names = vec![name.to_string()];
    let mut seen = 0;
    while seen < names.len() {
        let current = names[seen].clone();
        seen += 1;
        for n in &g.node {
            if n.op_type == "Gather" && n.input.get(1) == Some(&current) {
                return true;
            }
            if n.op_type == "Cast" && n.input.first() == Some(&current) && names.len() < 64 {
                names.extend(n.output.iter().cloned());
            }
        }
    }
    false
}
