"""The embedded data store: databases > tables > fields > entries, with queries, aggregates,
bulk writes, formulas, notes and change events. A Python API with no HTTP in it; the REST
blueprint (``app/api/data.py``) and the MCP server call the same functions.

    structure     databases, tables, fields (types, conversion, formulas)
    entries       create / get / update / delete / bulk
    query         filters, sorts, search, pagination, aggregates
    entry_notes   TipTap notes: get / replace / append
    events        the entry change hook (``events.subscribe``)
"""
