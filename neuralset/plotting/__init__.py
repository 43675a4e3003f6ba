"""Pictures of a study: events, whole studies, event overlap, batches and average responses.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (save it with
``fig.savefig(path)``; in a notebook it displays like any figure). matplotlib is imported when a
function is called, never at ``import neuralset``.
"""

from .events import overlap_matrix, plot_events, plot_overlap, plot_study, study_table
from .signals import average_by, plot_average, plot_batch

__all__ = [
    "average_by",
    "overlap_matrix",
    "plot_average",
    "plot_batch",
    "plot_events",
    "plot_overlap",
    "plot_study",
    "study_table",
]
