"""Each method's name, defaults and options are written once, in its torch-free spec."""

from sslx.train.methods import METHODS, SPECS


def test_every_registered_method_takes_everything_from_its_spec():
    built_in = {name: cls for name, cls in METHODS.items() if name in SPECS}
    assert sorted(built_in) == sorted(SPECS)
    for name, cls in built_in.items():
        spec = SPECS[name]
        assert cls.spec is spec and cls.name == name
        assert cls.defaults is spec.defaults and cls.options == spec.options
        assert cls.needs_shards == spec.needs_shards
        assert spec.summary and len(spec.summary) < 65 and "\n" not in spec.summary
    assert not SPECS["supervised"].needs_shards and SPECS["rotnet"].needs_shards
    assert SPECS["deepcluster"].defaults.sobel and SPECS["rotnet"].defaults.nesterov


def test_a_subclass_may_rename_itself_and_keeps_its_parents_spec():
    from sslx.train.methods.rotnet import RotNet

    class Renamed(RotNet):
        name = "rotnet-renamed"

    assert Renamed.name == "rotnet-renamed" and Renamed.defaults is SPECS["rotnet"].defaults
