"""Inputs: bytes from paths, uploads and archives, checked and decoded to grayscale.

``limits`` (sizes), ``formats`` (the accepted list, sniffing), ``read`` (bytes), ``raster``
(Pillow formats), ``dicom``, ``archive`` (ZIPs in memory) and ``sources`` (the one stream
of ``(name, source)`` items every batch consumer reads).
"""
