"""Call metrics from the calls backend's database: SQL (sql), the event watermark (watermark), the collector (db)."""
