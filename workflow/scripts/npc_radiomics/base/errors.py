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
