"""Applies the Alembic migrations to the database; invoke it after every deploy (see README)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.db.engine import get_engine
from messaging.db.migrate import current_revision, upgrade
from messaging.observability import logger, tracer

settings = config.FunctionSettings(config.DatabaseSettings)  # cold start: fails naming a missing variable


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    target = str(event.get("revision") or "head")
    engine = get_engine()
    before = current_revision(engine)
    upgrade(engine, target)
    after = current_revision(engine)
    logger.info("migrations applied", extra={"before": before, "after": after, "target": target})
    return {"before": before, "after": after}
