"""Errors raised on bad input: always one line naming the row, patient, file or key."""


class InputError(ValueError):
    """Bad user input (sample sheet, clinical table, config, image or mask).

    The message is one line that names what is wrong and where, so that a user with a
    thousand-row sheet can fix it without reading a traceback.
    """


class ModelFitError(RuntimeError):
    """A classifier could not be fitted (e.g. every tuning trial failed).

    The workflow records the model as failed, with this message as the reason, and goes
    on with the other models; the report shows the gap.
    """


def plain(value):
    """``value`` as a message shows it best: numpy scalars (``np.int64(2)``) as the Python
    number or string they hold, lists and tuples element by element; ``repr`` of that, so
    a message reads ``label 2`` or ``label 'yes'``, never ``label np.int64(2)``."""
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    return value


def shown(value) -> str:
    """``repr`` of :func:`plain` ``(value)``, for one-line error messages."""
    return repr(plain(value))
