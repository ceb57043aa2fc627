"""The one error type learner-facing commands turn into a single sentence."""


class LabkitError(Exception):
    """A problem the learner can fix; the message is one sentence saying how."""
