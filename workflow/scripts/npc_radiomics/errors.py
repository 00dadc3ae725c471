"""Errors raised on bad input: always one line naming the row, patient, file or key."""


class InputError(ValueError):
    """Bad user input (sample sheet, clinical table, config, image or mask).

    The message is one line that names what is wrong and where, so that a user with a
    thousand-row sheet can fix it without reading a traceback.
    """
