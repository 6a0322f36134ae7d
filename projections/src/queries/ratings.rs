//! The arithmetic of ratings shared by every rating read model (products' and service
//! providers'): means rounded to two decimals and the distribution of stars.

use std::collections::BTreeMap;

/// The mean of `count` ratings summing to `sum`, rounded to two decimals; `None` before
/// any rating.
pub fn mean(sum: i32, count: i32) -> Option<f64> {
    (count > 0).then(|| (f64::from(sum) / f64::from(count) * 100.0).round() / 100.0)
}

/// How many ratings gave 1, 2, 3, 4 and 5 stars, keyed by the stars ("1" to "5").
pub fn distribution(stars: [i32; 5]) -> BTreeMap<String, i64> {
    stars
        .into_iter()
        .enumerate()
        .map(|(i, count)| ((i + 1).to_string(), i64::from(count)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_round_to_two_decimals_and_every_star_is_counted() {
        assert_eq!(mean(0, 0), None);
        assert_eq!(mean(14, 3), Some(4.67));
        let d = distribution([0, 1, 0, 2, 5]);
        assert_eq!(d.len(), 5);
        assert_eq!(d["5"], 5);
        assert_eq!(d["1"], 0);
    }
}
