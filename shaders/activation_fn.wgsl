// The activation functions and their derivatives, shared by activation.wgsl and the fused
// epilogues of conv2d.wgsl and matmul.wgsl (the host prepends this file to theirs).
// The host defines ACT (u32): 0 = sigmoid, 1 = relu, 2 = tanh, 3 = none (the identity).

fn act(v: f32) -> f32 {
    if (ACT == 0u) {
        // Stable for any finite v: exp of a non-positive number only.
        let e = exp(-abs(v));
        return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
    } else if (ACT == 1u) {
        return max(v, 0.0);
    } else if (ACT == 2u) {
        // tanh saturates to ±1 in f32 beyond |v| = 10; clamping keeps exp-based lowerings finite.
        return tanh(clamp(v, -15.0, 15.0));
    }
    return v;
}

// The derivative from the forward output yv.
fn dact(yv: f32) -> f32 {
    if (ACT == 0u) {
        return yv * (1.0 - yv);
    } else if (ACT == 1u) {
        return select(0.0, 1.0, yv > 0.0);
    } else if (ACT == 2u) {
        return 1.0 - yv * yv;
    }
    return 1.0;
}

