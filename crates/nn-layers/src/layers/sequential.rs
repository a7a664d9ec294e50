use crate::error::{NnError, Result};
use crate::module::{Module, ModuleVisitor, TrainingFlag};
use crate::summary::{LayerInfo, LayerSummary, dry_run_dims};
use autograd::Var;
use conv_kernels::Device;

/// Children run in order (`nn.Sequential`), named `"0"`, `"1"`, ... so that parameter names
/// (`"1.weight"`) equal a PyTorch `state_dict`'s.
pub struct Sequential {
    children: Vec<Box<dyn Module>>,
    training: TrainingFlag,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.children.iter().map(|c| c.kind()).collect();
        f.debug_struct("Sequential")
            .field("children", &kinds)
            .field("training", &self.training.get())
            .finish()
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty container in training mode.
    pub fn new() -> Self {
        Self {
            children: Vec::new(),
            training: TrainingFlag::new(),
        }
    }

    /// Appends a child (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Appends a child, switched to the container's mode.
    pub fn push(&mut self, layer: impl Module + 'static) {
        let mut layer: Box<dyn Module> = Box::new(layer);
        layer.set_training(self.training.get());
        self.children.push(layer);
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True when it has no child.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The children, in order.
    pub fn children(&self) -> &[Box<dyn Module>] {
        &self.children
    }

    /// Runs every child's own forward in turn, nothing fused at this level (a child that is
    /// itself a `Sequential` still fuses inside): the definition that
    /// [`Module::forward`]'s fusion keeps (for tests and for measuring what fusion gains).
    pub fn forward_unfused(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for (i, child) in self.children.iter().enumerate() {
            h = child
                .forward(&h)
                .map_err(|e| layer_err(i, child.kind(), e))?;
        }
        Ok(h)
    }

    /// Whether it is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.get()
    }

    /// One row per child for an input of `input` dimensions (d2l's shape walk, with parameter
    /// counts and FLOPs). Children with [`LayerInfo`] (every built-in layer) are summarised
    /// without computation; a custom child without it is run once on zeros on `device` (the
    /// device its parameters live on), in evaluation mode and without recording, to find its
    /// output shape, and its FLOPs are reported as unknown.
    pub fn layer_summaries(&self, device: &Device, input: &[usize]) -> Result<Vec<LayerSummary>> {
        let mut dims = input.to_vec();
        let mut rows = Vec::with_capacity(self.children.len());
        for (i, child) in self.children.iter().enumerate() {
            let wrap = |e| layer_err(i, child.kind(), e);
            let (flops, window) = match child.layer_info() {
                Some(info) => {
                    let flops = info.flops(&dims).map_err(wrap)?;
                    dims = info.output_dims(&dims).map_err(wrap)?;
                    (Some(flops), info.window())
                }
                None => {
                    dims = dry_run_dims(child.as_ref(), device, &dims).map_err(wrap)?;
                    (None, None)
                }
            };
            rows.push(LayerSummary {
                name: i.to_string(),
                kind: child.kind(),
                output_dims: dims.clone(),
                params: child.num_parameters(),
                flops,
                window,
            });
        }
        Ok(rows)
    }
}

fn layer_err(i: usize, kind: &'static str, source: NnError) -> NnError {
    NnError::Layer {
        name: i.to_string(),
        kind,
        source: Box::new(source),
    }
}

impl Module for Sequential {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    /// Runs the children in order, fusing each activation into the layer before it when that
    /// layer can ([`Module::forward_activation`]: `Conv2d` and `Linear`), and a pooling layer
    /// after that pair too ([`Module::forward_activation_pool`]: `Conv2d`); the result is that
    /// of [`Sequential::forward_unfused`] (bit for bit on the CPU).
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        let mut i = 0;
        while let Some(child) = self.children.get(i) {
            let next_act = self.children.get(i + 1).and_then(|c| c.as_activation());
            let then_pool = self.children.get(i + 2).and_then(|c| c.as_pool());
            let with_pool = next_act
                .zip(then_pool)
                .and_then(|(act, pool)| child.forward_activation_pool(&h, act, &pool))
                .map(|r| (r, 3));
            let with_act = || {
                next_act
                    .and_then(|act| child.forward_activation(&h, act))
                    .map(|r| (r, 2))
            };
            let (out, step) = with_pool
                .or_else(with_act)
                .unwrap_or_else(|| (child.forward(&h), 1));
            h = out.map_err(|e| layer_err(i, child.kind(), e))?;
            i += step;
        }
        Ok(h)
    }

    fn visit(&self, v: &mut dyn ModuleVisitor) {
        v.training_flag(&self.training);
        for (i, child) in self.children.iter().enumerate() {
            v.child(&i.to_string(), child.as_ref());
        }
    }

    /// Static information exists when every child has it.
    fn layer_info(&self) -> Option<&dyn LayerInfo> {
        self.children
            .iter()
            .all(|c| c.layer_info().is_some())
            .then_some(self as &dyn LayerInfo)
    }
}

impl LayerInfo for Sequential {
    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut dims = input.to_vec();
        for (i, child) in self.children.iter().enumerate() {
            let info = child.layer_info().ok_or_else(|| no_info(i, child.kind()))?;
            dims = info
                .output_dims(&dims)
                .map_err(|e| layer_err(i, child.kind(), e))?;
        }
        Ok(dims)
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        let mut dims = input.to_vec();
        let mut total = 0;
        for (i, child) in self.children.iter().enumerate() {
            let wrap = |e| layer_err(i, child.kind(), e);
            let info = child.layer_info().ok_or_else(|| no_info(i, child.kind()))?;
            total += info.flops(&dims).map_err(wrap)?;
            dims = info.output_dims(&dims).map_err(wrap)?;
        }
        Ok(total)
    }
}

fn no_info(i: usize, kind: &'static str) -> NnError {
    layer_err(
        i,
        kind,
        crate::error::invalid(
            "Sequential",
            "this child has no static layer information; use Sequential::layer_summaries",
        ),
    )
}
