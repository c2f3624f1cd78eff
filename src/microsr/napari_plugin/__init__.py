"""The napari plugin (npe2 manifest ``microsr/napari.yaml``): readers, a writer, sample data and the widgets."""
