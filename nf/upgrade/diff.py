"""Which elements an upgrade changes.

An element is *unchanged* when the running graph has an element of the same
name, class name, configuration string and code version (and, for classes
from an upgrade package, the same class object); unchanged elements keep
running untouched -- same object, same sockets, same state.  Everything else
in the new graph is *added* (new name) or *changed*; elements only in the old
graph are *removed*.  A changed AddressInfo can change what other elements'
unchanged configuration strings mean, so it marks every element changed.
"""

__all__ = ["GraphDiff", "diff"]


class GraphDiff:
    def __init__(self, unchanged, changed, added, removed):
        self.unchanged, self.changed, self.added, self.removed = unchanged, changed, added, removed

    @property
    def integrate(self):
        """Names of the elements the new graph builds anew."""
        return self.changed + self.added

    def summary(self):
        return {"unchanged": len(self.unchanged), "changed": self.changed,
                "added": self.added, "removed": self.removed}


def _same(old, decl, new_cls):
    return (type(old).__name__ == decl.cls and old.config == decl.config
            and getattr(type(old), "CODE_VERSION", None) == getattr(new_cls, "CODE_VERSION", 0)
            and (new_cls is type(old) or new_cls.__module__ == type(old).__module__))


def diff(old_elements, new_graph, resolve):
    """``old_elements``: name -> running element; ``resolve``: class name -> class."""
    unchanged, changed, added = [], [], []
    for name, decl in new_graph.elements.items():
        old = old_elements.get(name)
        if old is None:
            added.append(name)
        elif _same(old, decl, resolve(decl.cls)):
            unchanged.append(name)
        else:
            changed.append(name)
    removed = [n for n in old_elements if n not in new_graph.elements]
    if any(new_graph.elements[n].cls == "AddressInfo" for n in changed + added) or \
            any(type(old_elements[n]).__name__ == "AddressInfo" for n in removed):
        changed = [n for n in new_graph.elements if n in old_elements]
        unchanged = []
    return GraphDiff(unchanged, changed, added, removed)
