//! Market indicators on daily series: Wilder's RSI and MACD. Each returns `None` when the
//! series is shorter than the indicator needs; the caller turns that into an input error.

/// Wilder's RSI over `period` of the changes of `values` (oldest first). The first average
/// gain and loss are the simple means of the first `period` changes; every later change
/// updates them as `avg = (avg * (period - 1) + x) / period`. Needs `period + 1` values.
/// RSI is 100 when the average loss is 0, and 50 when both averages are 0 (a flat line).
pub fn wilder_rsi(values: &[f64], period: usize) -> Option<f64> {
    if period == 0 || values.len() < period + 1 {
        return None;
    }
    let n = period as f64;
    let mut changes = values.windows(2).map(|w| w[1] - w[0]);
    let (mut gain_avg, mut loss_avg) = (0.0, 0.0);
    for x in changes.by_ref().take(period) {
        gain_avg += x.max(0.0);
        loss_avg += (-x).max(0.0);
    }
    gain_avg /= n;
    loss_avg /= n;
    for x in changes {
        gain_avg = (gain_avg * (n - 1.0) + x.max(0.0)) / n;
        loss_avg = (loss_avg * (n - 1.0) + (-x).max(0.0)) / n;
    }
    Some(if loss_avg == 0.0 {
        if gain_avg == 0.0 {
            50.0
        } else {
            100.0
        }
    } else {
        100.0 - 100.0 / (1.0 + gain_avg / loss_avg)
    })
}

/// Exponential moving average with `alpha = 2 / (period + 1)`, seeded with the simple mean of
/// the first `period` values. Element `i` of the result is the EMA at index `i + period - 1`
/// of `values`. Needs at least `period` values.
pub fn ema_series(values: &[f64], period: usize) -> Option<Vec<f64>> {
    if period == 0 || values.len() < period {
        return None;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let seed = values[..period].iter().sum::<f64>() / period as f64;
    let mut out = Vec::with_capacity(values.len() - period + 1);
    out.push(seed);
    let mut ema = seed;
    for &x in &values[period..] {
        ema = alpha * x + (1.0 - alpha) * ema;
        out.push(ema);
    }
    Some(out)
}

/// The last values of the MACD line, its signal line and the histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Macd {
    pub line: f64,
    pub signal: f64,
    pub histogram: f64,
}

/// MACD(fast, slow, signal): line = EMA_fast - EMA_slow from index `slow - 1` on; signal =
/// EMA(signal) of the line, seeded the same way. Needs `slow + signal - 1` values and
/// `fast < slow`.
pub fn macd(values: &[f64], fast: usize, slow: usize, signal: usize) -> Option<Macd> {
    if fast == 0 || signal == 0 || fast >= slow || values.len() < slow + signal - 1 {
        return None;
    }
    let fast_ema = ema_series(values, fast)?;
    let slow_ema = ema_series(values, slow)?;
    // fast_ema[k] is at index k + fast - 1; align it with slow_ema[j] at index j + slow - 1.
    let offset = slow - fast;
    let line: Vec<f64> = slow_ema
        .iter()
        .enumerate()
        .map(|(j, slow_value)| fast_ema[j + offset] - slow_value)
        .collect();
    let signal_ema = ema_series(&line, signal)?;
    let line_last = *line.last()?;
    let signal_last = *signal_ema.last()?;
    Some(Macd {
        line: line_last,
        signal: signal_last,
        histogram: line_last - signal_last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_edge_cases() {
        assert_eq!(wilder_rsi(&[1.0, 2.0, 3.0], 2), Some(100.0));
        assert_eq!(wilder_rsi(&[3.0, 3.0, 3.0], 2), Some(50.0));
        assert_eq!(wilder_rsi(&[3.0, 2.0, 1.0], 2), Some(0.0));
        assert_eq!(wilder_rsi(&[1.0, 2.0], 2), None);
    }

    #[test]
    fn ema_hand_computed() {
        // period 3, alpha 0.5: seed mean(1,2,3)=2, then 0.5*4+0.5*2=3, then 0.5*5+0.5*3=4.
        assert_eq!(
            ema_series(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
            Some(vec![2.0, 3.0, 4.0])
        );
    }

    #[test]
    fn macd_needs_enough_values() {
        let v: Vec<f64> = (0..33).map(f64::from).collect();
        assert!(macd(&v, 12, 26, 9).is_none());
        assert!(macd(&[v.clone(), vec![33.0]].concat(), 12, 26, 9).is_some());
    }
}
