//! Safe, bounds-checked matrix products on top of the `gemm` crate.
//!
//! Every operand is a slice plus a [`Layout`] (rows, columns and element strides), so transposes
//! are free. Extents are checked against the slice lengths before any unsafe call.
//!
//! Calls made from inside a rayon task ([`Threads::Single`]) run on their thread only;
//! top-level calls ([`Threads::Parallel`]) split the product over rayon's pool, the pool every
//! other CPU kernel forks on. (`matrixmultiply`, which runs its own thread pool, once served
//! LeNet's large row-major products: since training steps run on a rayon worker
//! (`Device::run_on_workers`), its extra thread contended with rayon's idle one, and `gemm` on
//! rayon measured 1.5–4 % faster for seed LeNet steps.)

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
    let par = match threads {
        Threads::Single => gemm::Parallelism::None,
        Threads::Parallel => gemm::Parallelism::Rayon(rayon::current_num_threads()),
    };
    // SAFETY: every view was checked above to stay inside its slice; `c` is borrowed mutably
    // and cannot alias `a` or `b`.
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
