import logging
import warnings

from alkit.detector.quiet import quiet_lightning


def test_quiet_lightning_hides_chatter_and_keeps_real_warnings():
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning():
            assert logger.level == logging.WARNING
            warnings.warn(
                "Experiment logs directory /r/ensemble/logs/member_00 exists and is not empty."
                " Previous log files in this directory will be deleted!",
                stacklevel=1,
            )
            warnings.warn("The dataloader does not have many workers", stacklevel=1)
    assert [str(w.message) for w in caught] == ["The dataloader does not have many workers"]
    assert logger.level == before
