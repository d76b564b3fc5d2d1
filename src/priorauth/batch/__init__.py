"""Many requests at once: batch determinations to Parquet, policy impact, gold cards, yearly
figures.

- `rows`: a determination as one row of the batch table (the Arrow schema).
- `sources`: where requests come from (JSON Lines, Parquet, the store) and the policy set.
- `runner`: deciding in this process or a process pool, written to Parquet.
- `spark`: the same engine on Apache Spark (`mapInArrow`).
- `impact`: a new policy version against history, on DuckDB or Spark SQL.
- `goldcard`: gold-card rules, approval rates, exemptions and review samples.
- `yearly`: the CMS-0057-F yearly report.
- `generate`: varied requests made from example requests, for tests and benchmarks.
"""
