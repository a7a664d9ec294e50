//! Safe, bounds-checked matrix products on top of the `gemm` and `matrixmultiply` crates.
//!
//! Every operand is a slice plus a [`Layout`] (rows, columns and element strides), so transposes
//! are free. Extents are checked against the slice lengths before any unsafe call.
//!
//! Which crate runs a product (measured on LeNet's shapes, see the closing note of issue 3):
//! - calls made from inside a rayon task ([`Threads::Single`]) always use `gemm` without
//!   parallelism: `matrixmultiply`'s `threading` feature runs its own pool, which must not be
//!   entered from rayon workers (it would oversubscribe the cores);
//! - top-level calls ([`Threads::Parallel`]) use `matrixmultiply` for large products whose B
//!   is stored row-major (fc1's backward: 0.19–0.24 ms vs 0.23–0.25 ms with `gemm`), and
//!   `gemm` on rayon's pool otherwise: transposed B (fc1 forward, 0.25 ms vs 0.30–0.32 ms),
//!   skinny products (fc3: 7 µs vs 11–16 µs) and small ones.
//!
//! `FOVEA_GEMM_ENGINE=gemm|matrixmultiply` forces one crate (for benchmarking).

/// Shape and element strides of a matrix stored in a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance between consecutive rows, in elements.
    pub rs: usize,
    /// Distance between consecutive columns, in elements.
    pub cs: usize,
}

impl Layout {
    /// A dense row-major `rows × cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of this view (no data moves).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// One past the largest element offset the view touches (0 when empty).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// Who may run threads for a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// The caller is already parallel (a rayon task): run on this thread only.
    Single,
    /// A top-level call: the GEMM crate may use every core.
    Parallel,
}

/// Which crate runs a top-level product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Gemm,
    MatrixMultiply,
}

fn engine_for(m: usize, k: usize, n: usize, b_transposed: bool, threads: Threads) -> Engine {
    static FORCED: std::sync::OnceLock<Option<Engine>> = std::sync::OnceLock::new();
    let forced = FORCED.get_or_init(|| match std::env::var("FOVEA_GEMM_ENGINE").as_deref() {
        Ok("gemm") => Some(Engine::Gemm),
        Ok("matrixmultiply") => Some(Engine::MatrixMultiply),
        _ => None,
    });
    match (forced, threads) {
        (Some(Engine::Gemm), _) => return Engine::Gemm,
        (Some(Engine::MatrixMultiply), Threads::Parallel) => return Engine::MatrixMultiply,
        _ => {}
    }
    match threads {
        Threads::Single => Engine::Gemm,
        Threads::Parallel if !b_transposed && m.min(n) >= 16 && m * n * k >= 1 << 22 => {
            Engine::MatrixMultiply
        }
        Threads::Parallel => Engine::Gemm,
    }
}

/// `c = a · b`, or `c += a · b` when `accumulate`.
///
/// # Panics
/// When the layouts disagree (`a` is m×k, `b` k×n, `c` m×n) or a view reaches past its slice:
/// both are bugs in the calling kernel, never user input (specs check that first).
#[allow(clippy::too_many_arguments)] // BLAS-style: three operands, each with its layout
pub(crate) fn sgemm(
    a: &[f32],
    la: Layout,
    b: &[f32],
    lb: Layout,
    c: &mut [f32],
    lc: Layout,
    accumulate: bool,
    threads: Threads,
) {
    let (m, k, n) = (la.rows, la.cols, lb.cols);
    assert!(
        lb.rows == k && lc.rows == m && lc.cols == n,
        "sgemm: mismatched layouts {la:?} {lb:?} {lc:?}"
    );
    assert!(
        la.extent() <= a.len() && lb.extent() <= b.len() && lc.extent() <= c.len(),
        "sgemm: a view reaches past its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * lc.rs + j * lc.cs] = 0.0;
                }
            }
        }
        return;
    }
    match engine_for(m, k, n, lb.rs < lb.cs, threads) {
        Engine::Gemm => {
            let par = match threads {
                Threads::Single => gemm::Parallelism::None,
                Threads::Parallel => gemm::Parallelism::Rayon(rayon::current_num_threads()),
            };
            // SAFETY: every view was checked above to stay inside its slice; `c` is borrowed
            // mutably and cannot alias `a` or `b`.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    lc.cs as isize,
                    lc.rs as isize,
                    accumulate,
                    a.as_ptr(),
                    la.cs as isize,
                    la.rs as isize,
                    b.as_ptr(),
                    lb.cs as isize,
                    lb.rs as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                )
            }
        }
        Engine::MatrixMultiply => {
            // SAFETY: as above.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    la.rs as isize,
                    la.cs as isize,
                    b.as_ptr(),
                    lb.rs as isize,
                    lb.cs as isize,
                    if accumulate { 1.0 } else { 0.0 },
                    c.as_mut_ptr(),
                    lc.rs as isize,
                    lc.cs as isize,
                )
            }
        }
    }
}
