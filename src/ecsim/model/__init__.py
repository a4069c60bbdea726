"""One declaration of the model, several uses: engine, reference solver, SBML export."""

from .declaration import Model, Submodel, symbols

__all__ = ["Model", "Submodel", "symbols"]
