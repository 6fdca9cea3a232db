"""Known-harmless third-party messages are silenced by the CLI; our own warnings stay."""

import logging
import warnings

from lightning_gancomp.quiet import silence_known_warnings


def test_known_messages_are_dropped_and_ours_kept(caplog):
    silence_known_warnings()
    with warnings.catch_warnings(record=True) as seen:
        warnings.filterwarnings("always", message="gancomp")
        silence_known_warnings()  # inside catch_warnings: the filters must be installed again
        warnings.warn(
            "Found 62 module(s) in eval mode at the start of training. This may ...",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("gancomp: something of ours", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["gancomp: something of ours"]
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("💡 Tip: For seamless cloud logging ... try installing [litlogger](https://...)")
        logger.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
