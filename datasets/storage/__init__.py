"""The SQL store: every table, batch bookkeeping and fast reads into Polars, and what is read straight from
the batches table (data quality, complete months).

Imports only datasets.common and datasets.domain.
"""
