"""Could a pause statistic tell real speech from music (#31 item 3)? A one-off probe.

Per 3-s segment of every GTZAN clip (clean and loud-mastered), every Emotify
clips, librosa's recordings and the not-music probes of ``explore_not_music.py``: the
share of 23-ms frames below half the mean RMS (``low``, Scheirer & Slaney 1997), the share
30 dB below the segment's loudest frame (``quiet``), and the share of the RMS envelope's
modulation energy at 2.5-6 Hz (``mod4``, the syllable rate); track means. Prints the music
quantiles and each probe's values. Run: ``.venv/bin/python research/explore_speech_pauses.py``
(after ``explore_not_music.py``, which writes the probes).
"""
import csv, sys, numpy as np, glob
from pathlib import Path
from genre_tagger.pipeline.audio import load
from genre_tagger.training.degrade import DEGRADATIONS
SR=22050
def stats(y):
    out=[]
    seg=3*SR
    for s in range(0, len(y)-seg+1, seg):
        x=y[s:s+seg]
        fr=512
        n=len(x)//fr
        rms=np.sqrt((x[:n*fr].reshape(n,fr)**2).mean(1))+1e-9
        low=(rms<0.5*rms.mean()).mean()   # Scheirer-Slaney low-energy share
        db=20*np.log10(rms/rms.max())
        quiet=(db<-30).mean()
        env=rms/rms.mean()
        spec=np.abs(np.fft.rfft(env-env.mean()))**2
        f=np.fft.rfftfreq(len(env), fr/SR)
        mod4=spec[(f>=2.5)&(f<=6)].sum()/max(spec[(f>0.5)&(f<20)].sum(),1e-12)
        out.append((low, quiet, mod4))
    return np.array(out).mean(0) if out else None
rows=[]
gt=sorted(glob.glob("/work/shared/data/gtzan/genres/*/*"))
for p in gt:
    y=load(p)
    rows.append(("gtzan", Path(p).parent.name, *stats(y)))
    rows.append(("loud", Path(p).parent.name, *stats(DEGRADATIONS["loud-master"](y))))
for i, r in enumerate(csv.DictReader(open("/work/shared/data/emotify/labels.csv"))):
    rows.append(("emotify", r["genre"], *stats(load(Path("/work/shared/data/emotify")/r["path"]))))
for r in csv.DictReader(open("/work/shared/data/librosa/labels.csv")):
    s=stats(load(Path("/work/shared/data/librosa")/r["path"]))
    if s is not None: rows.append(("librosa-"+r["kind"], r["path"][:20], *s))
for p in sorted(Path("/tmp/genre-tagger-not-music-probes").iterdir()):
    rows.append(("probe", p.stem, *stats(load(p))))

music=np.array([r[2:] for r in rows if r[0] in ("gtzan","loud","emotify")])
print("music n",len(music)," quantiles low/quiet/mod4 q50,q95,q99,max:")
for i,n in enumerate(("low","quiet","mod4")):
    print(n, np.round(np.quantile(music[:,i],[0.5,0.95,0.99,1.0]),3))
for r in rows:
    if r[0].startswith("librosa") or r[0]=="probe": print(r[0], r[1], np.round(r[2:],3))
