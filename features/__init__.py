"""Pure functions on data frames: input schemas, loaders, indicators, rule-based stage labellers."""
