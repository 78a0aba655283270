__version__ = "0.0.1"


# %% ../nbs/04_model.ipynb #92ae92a8
from mmsent import model as _model   # importing mmsent registers its config, model and processor with the Auto classes (mmsent.model does it)

# %% ../nbs/04_model.ipynb #92ae92a8
from mmsent import model as _model   # importing mmsent registers its config, model and processor with the Auto classes (mmsent.model does it)

# %% ../nbs/04_model.ipynb #92ae92a8
from mmsent import model as _model   # importing mmsent registers its config, model and processor with the Auto classes (mmsent.model does it)

# %% ../nbs/04_model.ipynb #92ae92a8
from mmsent import model as _model   # importing mmsent registers its config, model and processor with the Auto classes (mmsent.model does it)

# %% ../nbs/04_model.ipynb #92ae92a8
from mmsent import model as _model   # importing mmsent registers its config, model and processor with the Auto classes (mmsent.model does it)