"""The doors of tickwise's web servers (the console and the watchtower's views): who may read
or control (``auth``) and where and how a server may listen (``doors``)."""
