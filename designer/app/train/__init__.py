"""The Train panel: training the design on data, with live curves, filters and a confusion matrix."""
