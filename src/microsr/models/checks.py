"""The acquisition check every model applies to its input: one pixel-size mismatch policy for all methods."""

from __future__ import annotations

import warnings

from microsr.errors import InputError

#: Relative pixel-size mismatch beyond which a prediction warns: the blur (and, for SIM, the pattern
#: frequency) the network learned is off by more than a tenth, and its output shows it.
PIXEL_SIZE_WARN = 0.10

#: Relative mismatch beyond which a prediction is refused: the network would be applied to a physics
#: it never saw, and its output could look plausible while being wrong.
PIXEL_SIZE_REFUSE = 0.20


class AcquisitionWarning(UserWarning):
    """The input was acquired differently from the model's training data; the output may show it."""


def check_pixel_size(pixel_size_nm: float | None, trained_nm: float, what: str = "the image", *,
                     sampling: str = "pixels") -> None:
    """Warn beyond :data:`PIXEL_SIZE_WARN`, refuse beyond :data:`PIXEL_SIZE_REFUSE`; ``None`` (unknown) passes.

    Parameters
    ----------
    pixel_size_nm : float or None
        The input's pixel size in the sample.
    trained_nm : float
        The pixel size the model was trained at.
    what : str
        How the message names the input ("the image", "the raw frames").
    sampling : str
        What is compared, in the message: "pixels", or "z-steps" for the planes of a volume.

    Raises
    ------
    InputError
        The mismatch exceeds :data:`PIXEL_SIZE_REFUSE`; the message says what to do.

    Examples
    --------
    >>> check_pixel_size(101.0, 100.0)
    >>> check_pixel_size(150.0, 100.0)
    Traceback (most recent call last):
    ...
    microsr.errors.InputError: the image: 150 nm pixels but the model was trained at 100 nm (50 % off, more than 20 %): resample the input to 100 nm or train a model for 150 nm
    """
    if pixel_size_nm is None:
        return
    mismatch = abs(float(pixel_size_nm) / float(trained_nm) - 1.0)
    message = (f"{what}: {pixel_size_nm:g} nm {sampling} but the model was trained at {trained_nm:g} nm "
               f"({100 * mismatch:.0f} % off")
    if mismatch > PIXEL_SIZE_REFUSE:
        raise InputError(f"{message}, more than {100 * PIXEL_SIZE_REFUSE:.0f} %): resample the input to "
                         f"{trained_nm:g} nm or train a model for {pixel_size_nm:g} nm")
    if mismatch > PIXEL_SIZE_WARN:
        warnings.warn(f"{message}): the blur and pattern it learned do not match; expect artifacts",
                      AcquisitionWarning, stacklevel=3)
