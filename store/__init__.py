"""The database adapter: tables, the engine's lifecycle and schema migrations."""

import logging

# Alembic announces its plugins when imported and its dialect on every run, at INFO: the
# engine's log shows the migration steps taken instead (store.migrate)
logging.getLogger("alembic").setLevel(logging.WARNING)
