// Gathering a batch from data held on the device. gather_rows: out[r * row_len + j] =
// values[byte(idx[r] * row_len + j)] over a byte table packed four to a little-endian word;
// gather_words: out_words[r] = words[idx[r]] (labels); gather_batch: both in one launch (the
// labels from label_words).

struct Params {
    total: u32, row_len: u32, batch: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_words: array<u32>;
@group(0) @binding(6) var<storage, read> label_words: array<u32>;

fn thread(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + li;
}

@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t >= p.total) { return; }
    gather_row_element(t);
}

// Element t of the gathered rows.
fn gather_row_element(t: u32) {
    let r = t / p.row_len;
    let b = idx[r] * p.row_len + t % p.row_len;
    let byte = (words[b / 4u] >> (8u * (b % 4u))) & 255u;
    out[t] = values[byte];
}

// Invocations 0..total gather the rows, total..total + batch the labels.
@compute @workgroup_size(256)
fn gather_batch(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t < p.total) {
        gather_row_element(t);
    } else if (t < p.total + p.batch) {
        out_words[t - p.total] = label_words[idx[t - p.total]];
    }
}

@compute @workgroup_size(256)
fn gather_words(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let t = thread(wid, nwg, li);
    if (t >= p.total) { return; }
    out_words[t] = words[idx[t]];
}
