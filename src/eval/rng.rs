//! The random numbers of the perturbation protocol: SplitMix64 (Steele et al. 2014) with random
//! access by draw index, so that a sample's noise depends only on its row in the data set (not
//! on which samples are evaluated, nor in which order) and the reference implementation
//! (fixtures/aopc_ref.py) draws the very same numbers.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Draw `j` of stream `seed`: a float32-exact value in [0, 1) (24 random bits).
pub fn uniform(seed: u64, j: u64) -> f64 {
    let mut z = seed.wrapping_add(j.wrapping_add(1).wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f64 * (1.0 / (1u64 << 24) as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_match_the_reference_generator() {
        // fixtures/digits/aopc_ref_p2.json "rng_check": draws 0..3 of stream 2017.
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/digits/aopc_ref_p2.json"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let check = &v["protocol"]["rng_check"];
        let seed = check["stream"].as_u64().expect("rng_check.stream");
        let want: Vec<f64> = check["draws_0_3"]
            .as_array()
            .expect("rng_check.draws_0_3")
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(want.len() >= 3);
        for (j, w) in want.iter().enumerate() {
            assert_eq!(super::uniform(seed, j as u64), *w, "draw {j}");
        }
    }
}
