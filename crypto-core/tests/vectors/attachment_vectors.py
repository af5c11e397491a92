#!/usr/bin/env python3
"""Independent computation of the attachment vectors of docs/protocol.md section 14 and of the
two-key chunks of crypto-core/tests/attachment.rs (TWO_KEY_CHUNK_V1/V2), written from the
specifications (RFC 8439 ChaCha20 + Poly1305, draft-irtf-cfrg-xchacha HChaCha20, RFC 5869
HKDF-Expand as HMAC-SHA256), not from the Rust code. Run: python3 attachment_vectors.py"""
import hmac, hashlib, struct
def rotl(v,c): return ((v<<c)&0xffffffff)|(v>>(32-c))
def qr(s,a,b,c,d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]=rotl(s[d]^s[a],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]=rotl(s[b]^s[c],7)
def rounds(s):
    for _ in range(10):
        qr(s,0,4,8,12);qr(s,1,5,9,13);qr(s,2,6,10,14);qr(s,3,7,11,15)
        qr(s,0,5,10,15);qr(s,1,6,11,12);qr(s,2,7,8,13);qr(s,3,4,9,14)
C=[0x61707865,0x3320646e,0x79622d32,0x6b206574]
def block(key,counter,nonce):
    init=C+list(struct.unpack('<8I',key))+[counter]+list(struct.unpack('<3I',nonce))
    s=init[:]; rounds(s)
    return struct.pack('<16I',*[(x+y)&0xffffffff for x,y in zip(s,init)])
def hchacha(key,n16):
    s=C+list(struct.unpack('<8I',key))+list(struct.unpack('<4I',n16)); rounds(s)
    return struct.pack('<8I',*(s[0:4]+s[12:16]))
def chacha_xor(key,nonce,counter,data):
    out=bytearray()
    for i in range(0,len(data),64):
        ks=block(key,counter+i//64,nonce)
        out+=bytes(a^b for a,b in zip(data[i:i+64],ks))
    return bytes(out)
def poly1305(k,m):
    r=int.from_bytes(k[:16],'little')&0x0ffffffc0ffffffc0ffffffc0fffffff
    s=int.from_bytes(k[16:],'little'); p=(1<<130)-5; a=0
    for i in range(0,len(m),16):
        n=int.from_bytes(m[i:i+16]+b'\x01','little'); a=(a+n)*r%p
    return ((a+s)%(1<<128)).to_bytes(16,'little')
def pad16(x): return b'\0'*((16-len(x)%16)%16)
def xseal(key,nonce24,ad,pt):
    sub=hchacha(key,nonce24[:16]); n=b'\0'*4+nonce24[16:]
    otk=block(sub,0,n)[:32]; ct=chacha_xor(sub,n,1,pt)
    mac=ad+pad16(ad)+ct+pad16(ct)+struct.pack('<QQ',len(ad),len(ct))
    return ct+poly1305(otk,mac)
def expand(key,info): return hmac.new(key,info+b'\x01',hashlib.sha256).digest()

# Section 14 vectors.
key=bytes(range(32)); prefix=bytes(range(32,51))
ck=expand(key,b"SecureChat v2 attachment chunk key"); cm=expand(key,b"SecureChat v2 attachment key commitment")
header=bytes([2,0x10])+prefix+cm
def blob(pt):
    chunks=[pt[i:i+65536] for i in range(0,len(pt),65536)] or [b'']
    out=header
    for i,c in enumerate(chunks):
        out+=xseal(ck,prefix+struct.pack('>I',i)+bytes([i==len(chunks)-1]),header,c)
    return out
print("CK",ck.hex()); print("CM",cm.hex())
b1=blob(b"The quick brown fox jumps over the lazy dog"); print("BLOB",b1.hex(),len(b1)); print("DIGEST",hashlib.sha256(b1).hexdigest())
b2=blob(b""); print("EBLOB",b2.hex(),len(b2)); print("EDIGEST",hashlib.sha256(b2).hexdigest())
b3=blob(bytes(i%251 for i in range(65537))); print("TLEN",len(b3)); print("TDIGEST",hashlib.sha256(b3).hexdigest())

# Two-key chunks: Poly1305 key multi-collisions (see the Rust test's comment).
p=(1<<130)-5
def otk(key,nonce24):
    sub=hchacha(key,nonce24[:16]); n=b'\0'*4+nonce24[16:]
    k=block(sub,0,n)[:32]
    r=int.from_bytes(k[:16],'little')&0x0ffffffc0ffffffc0ffffffc0fffffff
    s=int.from_bytes(k[16:],'little')
    return r,s
def blocks(b): return [int.from_bytes(b[i:i+16],'little')+(1<<128) for i in range(0,len(b),16)]
def salamander(k1,k2,nonce24,ad,nblocks=2):
    (r1,s1),(r2,s2)=otk(k1,nonce24),otk(k2,nonce24)
    adp=ad+pad16(ad)
    lens=struct.pack('<QQ',len(ad),16*nblocks)
    pre=blocks(adp); post=blocks(lens)
    n=len(pre)+nblocks+len(post)
    def fixed(r):
        acc=0
        for i,m in enumerate(pre): acc+=m*pow(r,n-i,p)
        for i,m in enumerate(post): acc+=m*pow(r,n-(len(pre)+nblocks+i),p)
        return acc%p
    F1,F2=fixed(r1),fixed(r2)
    # unknown blocks at positions len(pre) (exp a) and len(pre)+1 (exp b); others zero-ciphertext blocks
    a=n-len(pre); b=a-1
    extra1=sum((1<<128)*pow(r1,a-k,p) for k in range(2,nblocks)); extra2=sum((1<<128)*pow(r2,a-k,p) for k in range(2,nblocks))
    for T in range(1000):
        t1=(T-s1)%(1<<128); t2=(T-s2)%(1<<128)
        b1=(t1-F1-extra1)%p; b2=(t2-F2-extra2)%p
        A=[[pow(r1,a,p),pow(r1,b,p)],[pow(r2,a,p),pow(r2,b,p)]]
        det=(A[0][0]*A[1][1]-A[0][1]*A[1][0])%p
        inv=pow(det,p-2,p)
        X=((b1*A[1][1]-b2*A[0][1])*inv)%p
        Y=((A[0][0]*b2-A[1][0]*b1)*inv)%p
        if (1<<128)<=X<(1<<129) and (1<<128)<=Y<(1<<129):
            Cb=(X-(1<<128)).to_bytes(16,'little')+(Y-(1<<128)).to_bytes(16,'little')+bytes(16*(nblocks-2))
            tag=T.to_bytes(16,'little')
            return Cb,tag
def xopen(key,nonce24,ad,ct,tag):
    sub=hchacha(key,nonce24[:16]); n=b'\0'*4+nonce24[16:]
    k=block(sub,0,n)[:32]
    mac=ad+pad16(ad)+ct+pad16(ct)+struct.pack('<QQ',len(ad),len(ct))
    assert poly1305(k,mac)==tag
    return chacha_xor(sub,n,1,ct)
K1=bytes([0x11]*32); K2=bytes([0x22]*32); prefix=bytes([0x5a]*19)
nonce=prefix+struct.pack('>I',0)+b'\x01'
# old format: v1 header, raw keys
h1=bytes([1,0x10])+prefix
CT,tag=salamander(K1,K2,nonce,h1)
P1=xopen(K1,nonce,h1,CT,tag); P2=xopen(K2,nonce,h1,CT,tag)
assert P1!=P2
print("OLD", (CT+tag).hex()); print("OLD_P1",P1.hex()); print("OLD_P2",P2.hex())
# new format: v2 header committing to K1, chunk keys
ck1=expand(K1,b"SecureChat v2 attachment chunk key"); ck2=expand(K2,b"SecureChat v2 attachment chunk key")
cm1=expand(K1,b"SecureChat v2 attachment key commitment")
h2=bytes([2,0x10])+prefix+cm1
CT,tag=salamander(ck1,ck2,nonce,h2)
P1=xopen(ck1,nonce,h2,CT,tag); P2=xopen(ck2,nonce,h2,CT,tag)
print("NEW", (CT+tag).hex()); print("NEW_P1",P1.hex()); print("NEW_P2",P2.hex())
