// Gathering a batch from data held on the device. gather_rows: out[r * row_len + j] =
// values[byte(idx[r] * row_len + j)] over a byte table packed four to a little-endian word;
// gather_words: out_words[r] = words[idx[r]] (labels); gather_batch: both in one launch (the
// labels from label_words). The entry points ending in 4 serve rows of a multiple of four
// bytes: each invocation turns one word into four values stored as one vec4 (on llvmpipe a
// storage load costs the same per lane whatever its width, so a quarter of the loads).

struct Params {
    total: u32, row_len: u32, batch: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
// The 256 byte values, a uniform array: on llvmpipe a uniform load costs a tenth of a storage
// load (docs/notes/llvmpipe-loads.md).
@group(0) @binding(3) var<uniform> values: array<vec4<f32>, 64>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_words: array<u32>;
@group(0) @binding(6) var<storage, read> label_words: array<u32>;
// `out` seen as vec4s (the entry points ending in 4).
@group(0) @binding(7) var<storage, read_write> out4: array<vec4<f32>>;

fn thread(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

fn value(byte: u32) -> f32 {
    return values[byte / 4u][byte % 4u];
}

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t >= p.total) { return; }
    gather_row_element(t);
}

@compute @workgroup_size(256)
fn gather_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t >= p.total) { return; }
    gather_row_quad(t);
}

// Element t of the gathered rows.
fn gather_row_element(t: u32) {
    let r = t / p.row_len;
    let b = idx[r] * p.row_len + t % p.row_len;
    out[t] = value((words[b / 4u] >> (8u * (b % 4u))) & 255u);
}

// Elements 4q..4q+3 of the gathered rows (row_len a multiple of four, so a row starts a word).
fn gather_row_quad(q: u32) {
    let quads = p.row_len / 4u;
    let r = q / quads;
    let word = words[idx[r] * quads + q % quads];
    out4[q] = vec4<f32>(value(word & 255u), value((word >> 8u) & 255u),
                        value((word >> 16u) & 255u), value(word >> 24u));
}

// The label of gathered row r.
fn gather_label(r: u32) {
    out_words[r] = label_words[idx[r]];
}

// Invocations 0..total gather the rows, total..total + batch the labels.
@compute @workgroup_size(256)
fn gather_batch(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t < p.total) {
        gather_row_element(t);
    } else if (t < p.total + p.batch) {
        gather_label(t - p.total);
    }
}

// As gather_batch, with total counting quads of elements.
@compute @workgroup_size(256)
fn gather_batch4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t < p.total) {
        gather_row_quad(t);
    } else if (t < p.total + p.batch) {
        gather_label(t - p.total);
    }
}

@compute @workgroup_size(256)
fn gather_words(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t >= p.total) { return; }
    out_words[t] = words[idx[t]];
}
