from sslx.probe import data, datasets


def test_the_help_names_the_datasets_the_reader_knows():
    assert datasets.DATASETS == data.DATASETS
