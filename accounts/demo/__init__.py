"""The demo business behind `manage.py seed_demo` and the benchmarks: a believable SaaS book of
accounts, contacts, subscriptions, usage events and survey answers, generated with numpy
(`generator`) and loaded through the same services as the ingestion API (`loader`)."""
