"""tensorflow-datasets for the TFDS builders of this package (the ``tfds`` extra).

Builders import ``tfds`` from here, so without the extra importing one is a single
:class:`~palmjax.errors.InputError` line naming ``pip install 'palmjax[tfds]'``.
"""

from palmjax.extras import require

tfds = require("tensorflow_datasets", "the TFDS builders (palmjax.data.*_tfds)")
# Builders write and read array_record (tensorflow-datasets imports it only when it does).
require("array_record", "the TFDS builders (palmjax.data.*_tfds)")
