from sslx.common import datasets, labelled


def test_the_help_names_the_datasets_the_reader_knows():
    assert set(datasets.DATASETS) == {"imagefolder", *labelled.CIFAR}
    assert set(datasets.CIFAR_DATASETS) == set(labelled.CIFAR)  # eval_crop_ratio reads it
