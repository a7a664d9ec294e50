use crate::error::{NnError, Result};
use crate::module::{LayerSummary, Module};
use autograd::{Param, Var};
use tensor::RngState;

/// Children run in order (`nn.Sequential`), named `"0"`, `"1"`, ... so that parameter names
/// (`"1.weight"`) equal a PyTorch `state_dict`'s.
pub struct Sequential {
    children: Vec<Box<dyn Module>>,
    training: bool,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.children.iter().map(|c| c.kind()).collect();
        f.debug_struct("Sequential")
            .field("children", &kinds)
            .field("training", &self.training)
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
            training: true,
        }
    }

    /// Appends a child (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Appends a child.
    pub fn push(&mut self, layer: impl Module + 'static) {
        let mut layer: Box<dyn Module> = Box::new(layer);
        layer.set_training(self.training);
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

    /// Whether it is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// One row per child for an input of `input` dimensions (d2l's shape walk, with parameter
    /// counts and FLOPs); no computation runs.
    pub fn layer_summaries(&self, input: &[usize]) -> Result<Vec<LayerSummary>> {
        let mut dims = input.to_vec();
        let mut rows = Vec::with_capacity(self.children.len());
        for (i, child) in self.children.iter().enumerate() {
            let wrap = |e| layer_err(i, child.kind(), e);
            let flops = child.flops(&dims).map_err(wrap)?;
            dims = child.output_dims(&dims).map_err(wrap)?;
            rows.push(LayerSummary {
                name: i.to_string(),
                kind: child.kind(),
                output_dims: dims.clone(),
                params: child.num_parameters(),
                flops,
                window: child.window(),
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

    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for (i, child) in self.children.iter().enumerate() {
            h = child
                .forward(&h)
                .map_err(|e| layer_err(i, child.kind(), e))?;
        }
        Ok(h)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        self.children
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.named_parameters()
                    .into_iter()
                    .map(move |(n, p)| (format!("{i}.{n}"), p))
            })
            .collect()
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for c in &mut self.children {
            c.set_training(training);
        }
    }

    fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self
            .layer_summaries(input)?
            .last()
            .map_or_else(|| input.to_vec(), |r| r.output_dims.clone()))
    }

    fn flops(&self, input: &[usize]) -> Result<u64> {
        Ok(self.layer_summaries(input)?.iter().map(|r| r.flops).sum())
    }

    fn rng_states(&self) -> Vec<(String, RngState)> {
        self.children
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.rng_states()
                    .into_iter()
                    .map(move |(n, s)| (format!("{i}.{n}"), s))
            })
            .collect()
    }

    fn set_rng_state(&self, name: &str, state: RngState) -> bool {
        let Some((head, rest)) = name.split_once('.') else {
            return false;
        };
        match head
            .parse::<usize>()
            .ok()
            .and_then(|i| self.children.get(i))
        {
            Some(c) => c.set_rng_state(rest, state),
            None => false,
        }
    }
}
