"""首页 of the committee (继续医学教育委员会): figures, a credits chart and the lists behind them."""
